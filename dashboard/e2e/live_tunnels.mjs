// Log in, then watch the Tunnels page follow a tunnel's life without reloading: it
// appears, turns Healthy when a connector connects and Down when it stops; search, filter
// and the copy button work on the hydrated page.
import {
  ask, done, env, hydrated, launch, noSideScroll, shot, step, tableFits,
} from './harness.mjs';

const { browser, page, errors } = await launch();
// Live updates must arrive within 2 s; allow for a busy 2-core machine but report it.
const LIVE = { timeout: 5_000 };
let navigations = 0;
page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) navigations += 1; });

await step(page, 'the dashboard asks for a login first', async () => {
  await page.goto(`${env.url}/`);
  await page.waitForURL(/\/login/);
  await page.getByLabel('Email').fill(env.email);
  await page.getByLabel('Password').fill(env.password);
  await shot(page, '01-login');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL((url) => !url.pathname.startsWith('/login'));
  await hydrated(page);
});

await step(page, 'an empty account invites creating a tunnel', async () => {
  await page.getByRole('link', { name: /Create a tunnel/ }).first().waitFor();
  await shot(page, '02-tunnels-empty');
});

const loaded = navigations;
const { id } = await ask('create_tunnel', { name: 'web', hostname: 'web.example.com' });

await step(page, 'a new tunnel appears, Inactive, without a reload', async () => {
  const row = page.getByRole('row', { name: /web/ });
  await row.waitFor(LIVE);
  await row.getByText('Inactive').waitFor(LIVE);
  await row.getByText(id).waitFor();
});

await step(page, 'it turns Healthy when a connector connects', async () => {
  const started = Date.now();
  await ask('start_connector', { name: 'web' });
  await page.getByRole('row', { name: /web/ }).getByText('Healthy').waitFor(LIVE);
  process.stdout.write(`Healthy shown ${Date.now() - started} ms after the connector was asked to start\n`);
  await shot(page, '03-tunnels-healthy');
});

await step(page, 'at 1024 px the page does not scroll sideways', async () => {
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.getByRole('row', { name: /web/ }).getByText('Healthy').waitFor();
  await noSideScroll(page);
  // Nor does the table: every column shows.
  await tableFits(page, 'table.tunnels');
  await shot(page, '03b-tunnels-1024');
  await page.setViewportSize({ width: 1366, height: 820 });
});

await step(page, 'the copy button copies the tunnel id', async () => {
  const row = page.getByRole('row', { name: /web/ });
  await row.getByRole('button', { name: /Copy/ }).click();
  await row.getByText(/Copied/).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== id) throw new Error(`clipboard holds ${copied}, not ${id}`);
});

await step(page, 'search and the status filter narrow the table', async () => {
  const search = page.getByRole('searchbox');
  await search.fill('nothing-like-this');
  await page.getByRole('row', { name: /web/ }).waitFor({ state: 'detached' });
  await search.fill('we');
  await page.getByRole('row', { name: /web/ }).waitFor();
  await page.getByLabel('Status').selectOption({ label: 'Down' });
  await page.getByRole('row', { name: /web/ }).waitFor({ state: 'detached' });
  await page.getByLabel('Status').selectOption({ label: 'Healthy' });
  await page.getByRole('row', { name: /web/ }).waitFor();
  await page.getByLabel('Status').selectOption({ label: 'All statuses' });
  await search.fill('');
});

await step(page, 'it turns Down when the connector stops', async () => {
  await ask('stop_connector', { name: 'web' });
  await page.getByRole('row', { name: /web/ }).getByText('Down').waitFor(LIVE);
  await shot(page, '04-tunnels-down');
});

await step(page, 'nothing reloaded the page', async () => {
  if (navigations !== loaded) throw new Error(`${navigations - loaded} navigations after loading`);
});

await browser.close();
done(errors);
