// The browser side of a dashboard test. The Rust test (server/tests/e2e/browser.rs) owns
// the real server, connectors and origins; a script here drives headless Chromium through
// the pages and, where a person would act outside the browser (start a connector with the
// token the page shows, curl a hostname), asks the Rust test to do it. The two talk in
// lines: `@@ask {json}` on stdout is answered by one JSON line on stdin.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

const replies = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const screenshots = process.env.ADIT_SCREENSHOTS ?? 'screenshots';
mkdirSync(screenshots, { recursive: true });

/** Where the dashboard is, and who logs in. */
export const env = {
  url: required('ADIT_URL'),
  email: required('ADIT_EMAIL'),
  password: required('ADIT_PASSWORD'),
};

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (the Rust test sets it)`);
  return value;
}

/** Asks the Rust test to do something; resolves to its JSON answer. */
export async function ask(event, data = {}) {
  process.stdout.write(`@@ask ${JSON.stringify({ event, ...data })}\n`);
  const { value, done } = await replies.next();
  if (done) throw new Error(`the test closed stdin while we waited for "${event}"`);
  const answer = JSON.parse(value);
  if (answer.error) throw new Error(`the test could not ${event}: ${answer.error}`);
  return answer;
}

/** Starts Chromium with one page; page errors (a failed hydration) fail the run. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 820 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.url });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    process.stderr.write(`browser console: ${m.text()}\n`);
    // Anything the server's Content-Security-Policy blocks is a page error too.
    if (m.text().includes('Content Security Policy')) errors.push(m.text());
  });
  return { browser, page, errors };
}

/** Waits until the wasm has hydrated the page (the hydrate entry marks the body). */
export async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated="1"]', { timeout: 20_000 });
}

export async function shot(page, name) {
  await page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true });
}

let passed = 0;

/** One named check; on failure a screenshot is saved and the run stops. */
export async function step(page, name, fn) {
  try {
    await fn();
    passed += 1;
    process.stdout.write(`@@ok ${name}\n`);
  } catch (e) {
    await shot(page, `FAILED-${name.replace(/\W+/g, '-')}`).catch(() => {});
    process.stdout.write(`@@failed ${name}: ${e.stack ?? e}\n`);
    process.stdout.write(`@@done ${passed} passed, 1 failed\n`);
    process.exit(1);
  }
}

export function done(errors) {
  if (errors.length) {
    process.stdout.write(`@@failed page errors: ${errors.join(' | ')}\n`);
    process.stdout.write(`@@done ${passed} passed, 1 failed\n`);
    process.exit(1);
  }
  process.stdout.write(`@@done ${passed} passed, 0 failed\n`);
  process.exit(0);
}

/** Fails when the page scrolls sideways at the viewport's width; names what sticks out. */
export async function noSideScroll(page) {
  const report = await page.evaluate(() => {
    const root = document.scrollingElement;
    if (root.scrollWidth <= root.clientWidth) return null;
    const out = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 1)
      .slice(0, 6)
      .map((e) => `${e.tagName.toLowerCase()}${e.className ? `.${String(e.className).replace(/ /g, '.')}` : ''}`);
    return `${root.scrollWidth} px wide in ${root.clientWidth} px: ${out.join(', ')}`;
  });
  if (report) throw new Error(`the page scrolls sideways: ${report}`);
}

/** Fails when the table `selector` names is wider than its card (its last columns cut off). */
export async function tableFits(page, selector) {
  const report = await page.locator(selector).evaluate((table) => {
    const card = table.closest('.table-card');
    return card.scrollWidth <= card.clientWidth ? null : `${card.scrollWidth} px in ${card.clientWidth} px`;
  });
  if (report) throw new Error(`${selector} does not fit its card: ${report}`);
}

/** Waits until the focus is inside what `locator` finds. */
export async function focusWithin(locator) {
  const handle = await locator.elementHandle();
  await locator.page().waitForFunction((el) => el.contains(document.activeElement), handle, { timeout: 5_000 })
    .catch(async () => {
      const where = await locator.page().evaluate(() => document.activeElement?.outerHTML.slice(0, 120));
      throw new Error(`the focus is not inside ${locator}: it is on ${where}`);
    });
}

/** Calls the REST API from the page as its user (as another tab would). */
export async function api(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const { session } = JSON.parse(document.getElementById('adit-page').textContent);
    const response = await fetch(path, {
      method,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return response.status;
  }, { method, path, body });
}
