// The Settings pages as an admin uses them: add a zone (the server's refusal shows next to
// the field) and delete one by keyboard, create a read-only API token and use it from
// outside the browser, revoke it, add a viewer and see their password once, change a role
// (the last admin stays), find all of it in the audit log, see this node in the node list,
// see what a member sees, and remove the user. A screenshot of each page, at 1280 px.
import {
  ask, done, env, hydrated, launch, noSideScroll, shot, step, tableFits,
} from './harness.mjs';

const { browser, page, errors } = await launch();
// The narrowest desktop width the pages are laid out for: the screenshots show it.
await page.setViewportSize({ width: 1280, height: 800 });

async function open(path) {
  await page.goto(`${env.url}${path}`);
  await hydrated(page);
}

await step(page, 'a settings page asks for a login, then comes back', async () => {
  await page.goto(`${env.url}/settings/zones`);
  await page.waitForURL(/\/login\?next=%2Fsettings%2Fzones/);
  await page.getByLabel('Email').fill(env.email);
  await page.getByLabel('Password').fill(env.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL((url) => url.pathname === '/settings/zones');
  await hydrated(page);
  const nav = page.getByRole('navigation', { name: 'Main' });
  for (const name of ['Zones', 'API tokens', 'Users', 'Audit log', 'Nodes', 'Log in a device']) {
    await nav.getByRole('link', { name, exact: true }).waitFor();
  }
});

await step(page, 'a zone is checked in the page, then by the server, next to the field', async () => {
  const domain = page.getByLabel('Domain');
  const add = page.getByRole('button', { name: 'Add zone' });
  const error = page.locator('#zone-name-error');
  await domain.fill('*.wild.example');
  await add.click();
  await error.getByText(/not a wildcard/).waitFor();
  if (await domain.getAttribute('aria-invalid') !== 'true') throw new Error('the field is not marked invalid');
  // Inside the test server's own zone example.com: the server refuses it (409).
  await domain.fill('sub.example.com');
  await add.click();
  await error.getByText(/overlaps this account's zone example\.com/).waitFor();
  await domain.fill('adit-browser.dev');
  await add.click();
  await page.getByRole('row', { name: /adit-browser\.dev/ }).waitFor();
  await error.waitFor({ state: 'hidden' });
  if (await domain.inputValue() !== '') throw new Error('the field was not cleared');
  await shot(page, '01-zones');
});

await step(page, 'a zone is deleted after confirming', async () => {
  await page.getByLabel('Domain').fill('deleteme.dev');
  await page.getByRole('button', { name: 'Add zone' }).click();
  const row = page.getByRole('row', { name: /deleteme\.dev/ });
  const trigger = row.getByRole('button', { name: 'Delete zone deleteme.dev' });
  // The question takes the focus on Cancel, so a stray Enter deletes nothing; Escape
  // takes it back to the first button.
  await trigger.click();
  await page.waitForFunction(() => document.activeElement?.textContent === 'Cancel');
  await page.keyboard.press('Escape');
  await trigger.waitFor();
  await page.waitForFunction(() => document.activeElement?.textContent.startsWith('Delete zone'));
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement?.textContent === 'Cancel');
  await row.getByRole('button', { name: 'Delete', exact: true }).click();
  await row.waitFor({ state: 'detached' });
});

let token;
await step(page, 'a read-only API token is shown once, in a copyable box', async () => {
  await open('/settings/tokens');
  await page.getByText('adit login').first().waitFor();
  await page.getByLabel('Name', { exact: true }).fill('browser-read');
  if (!(await page.locator('#scope-read').isChecked())) throw new Error('read is not ticked by default');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = page.getByRole('status', { name: /browser-read/ });
  await secret.getByText('you will not see it again').waitFor();
  // The focus moves to the secret, so keyboard users land on it and its Copy button.
  if (!(await page.evaluate(() => document.activeElement?.classList.contains('secret')))) {
    throw new Error('the focus did not move to the token');
  }
  token = (await secret.locator('code').textContent()).trim();
  if (!token) throw new Error('no token shown');
  await secret.getByRole('button', { name: 'Copy API token' }).click();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== token) throw new Error('the copy button did not copy the token');
  await page.getByRole('row', { name: /browser-read/ }).getByText('Active').waitFor();
  await shot(page, '02-tokens-created');
  await secret.getByRole('button', { name: 'Done' }).click();
  await secret.waitFor({ state: 'detached' });
  if ((await page.content()).includes(token)) throw new Error('the token is still on the page');
});

await step(page, 'the token reads but may not create tunnels', async () => {
  const { get, post } = await ask('use_token', { token });
  if (get !== 200 || post !== 403) throw new Error(`GET ${get}, POST ${post}`);
});

await step(page, 'revoked in the page, it stops working', async () => {
  const row = page.getByRole('row', { name: /browser-read/ });
  await row.getByRole('button', { name: 'Revoke API token browser-read' }).click();
  await row.getByRole('group').getByRole('button', { name: 'Revoke', exact: true }).click();
  await page.getByRole('row', { name: /browser-read/ }).getByText('Revoked').waitFor();
  const { get, post } = await ask('use_token', { token });
  if (get !== 401 || post !== 401) throw new Error(`after revoking: GET ${get}, POST ${post}`);
  await shot(page, '03-tokens-revoked');
});

let password;
await step(page, 'a new viewer gets a generated password, shown once', async () => {
  await open('/settings/users');
  await page.getByLabel('Email', { exact: true }).fill('grace@example.com');
  if (await page.locator('#user-role').inputValue() !== 'viewer') throw new Error('new users are not viewers by default');
  await page.getByRole('button', { name: 'Add user' }).click();
  const secret = page.getByRole('status', { name: /grace@example\.com/ });
  await secret.getByText('you will not see it again').waitFor();
  password = (await secret.locator('code').textContent()).trim();
  const { status } = await ask('log_in', { email: 'grace@example.com', password });
  if (status !== 200) throw new Error(`the shown password does not log in: ${status}`);
  await shot(page, '04-users-created');
  await page.reload();
  await hydrated(page);
  if ((await page.content()).includes(password)) throw new Error('the password is shown again');
  await page.getByRole('row', { name: /grace@example\.com/ }).waitFor();
});

await step(page, 'a role changes in place and stays changed', async () => {
  const role = page.getByLabel('Role of grace@example.com');
  const saved = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/api/v1/users/'));
  await role.selectOption('member');
  if ((await saved).status() !== 200) throw new Error('the role change was refused');
  await page.reload();
  await hydrated(page);
  const now = await page.getByLabel('Role of grace@example.com').inputValue();
  if (now !== 'member') throw new Error(`the role is ${now} after a reload`);
});

await step(page, 'the last admin cannot be demoted, and the page says so', async () => {
  const role = page.getByLabel(`Role of ${env.email}`);
  await role.selectOption('viewer');
  await page.getByText(/last admin cannot be demoted or removed/).waitFor();
  await page.waitForFunction((label) => document.querySelector(`select[aria-label="${label}"]`).value === 'admin',
    `Role of ${env.email}`);
  await shot(page, '05-users-last-admin');
});

await step(page, 'the audit log lists it all, newest first, and filters', async () => {
  await open('/settings/audit');
  const rows = page.locator('table.audit tbody tr');
  for (const action of ['POST /api/v1/zones', 'DELETE /api/v1/zones/{zone}', 'POST /api/v1/tokens',
    'DELETE /api/v1/tokens/{token}', 'POST /api/v1/users', 'PATCH /api/v1/users/{user}']) {
    await rows.filter({ hasText: action }).first().waitFor();
  }
  // Newest first: the refused demotion came last.
  const first = await rows.first().textContent();
  if (!first.includes('PATCH /api/v1/users/{user}') || !first.includes('409')) throw new Error(`first row: ${first}`);
  await shot(page, '06-audit');
  await page.getByRole('searchbox', { name: 'Filter the audit log' }).fill('tokens');
  await page.getByText(/^\d+ of \d+ entries$/).waitFor();
  for (const text of await rows.allTextContents()) {
    if (!text.includes('tokens')) throw new Error(`filtered row without "tokens": ${text}`);
  }
});

await step(page, 'the nodes page lists this node, alive', async () => {
  await open('/settings/nodes');
  const row = page.getByRole('row', { name: /Alive/ });
  await row.first().waitFor();
  await page.getByText(/^1 alive of 1 node$/).waitFor();
  await page.getByRole('button', { name: 'Refresh' }).click();
  await row.first().waitFor();
  await shot(page, '06b-nodes');
});

await step(page, 'a member reads the zones and is told what needs an admin', async () => {
  const member = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  member.on('pageerror', (e) => errors.push(e.message));
  await member.goto(`${env.url}/settings/zones`);
  await member.getByLabel('Email').fill('grace@example.com');
  await member.getByLabel('Password').fill(password);
  await member.getByRole('button', { name: 'Log in' }).click();
  await member.waitForURL((url) => url.pathname === '/settings/zones');
  await hydrated(member);
  await member.getByRole('row', { name: /example\.com/ }).first().waitFor();
  if (await member.locator('form.settings-form').count() !== 0) throw new Error('a member gets the zone form');
  await member.getByText('only an admin adds or deletes them').waitFor();
  await shot(member, '07-member-zones');
  await member.getByRole('link', { name: /API tokens/ }).click();
  await member.waitForURL((url) => url.pathname === '/settings/tokens');
  await hydrated(member);
  await member.getByRole('heading', { name: 'An admin role is needed' }).waitFor();
  await shot(member, '08-member-tokens');
  await member.context().close();
});

await step(page, 'at 1024 px no settings page scrolls sideways, and every column shows', async () => {
  await page.setViewportSize({ width: 1024, height: 768 });
  for (const path of ['/settings/zones', '/settings/tokens', '/settings/users', '/settings/audit', '/settings/nodes']) {
    await open(path);
    await noSideScroll(page);
    await tableFits(page, '.table-card table');
  }
  await shot(page, '09-audit-1024');
  await page.setViewportSize({ width: 1280, height: 800 });
});

await step(page, 'a user is removed after confirming', async () => {
  await open('/settings/users');
  const row = page.getByRole('row', { name: /grace@example\.com/ });
  await row.getByRole('button', { name: 'Remove user grace@example.com' }).click();
  await row.getByRole('group').getByRole('button', { name: 'Remove', exact: true }).click();
  await row.waitFor({ state: 'detached' });
  const { status } = await ask('log_in', { email: 'grace@example.com', password });
  if (status === 200) throw new Error('a removed user still logs in');
});

await browser.close();
done(errors);
