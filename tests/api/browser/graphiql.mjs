// Opens the GraphiQL page at URL (argv[2]) in the Chromium at argv[3], with every
// request to another origin refused, pastes the key in IDGRAPH_KEY into the Headers
// tab, runs `{ __typename }`, reloads, and prints what happened as one JSON object.
import { chromium } from 'playwright-core';

const [url, executablePath] = process.argv.slice(2);
const origin = new URL(url).origin;
const key = process.env.IDGRAPH_KEY;
const report = { external: [], errors: [], assets: {} };

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const context = await browser.newContext();
  await context.route('**/*', (route) => {
    const requested = new URL(route.request().url());
    if (requested.protocol === 'data:' || requested.origin === origin) return route.continue();
    report.external.push(requested.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') report.errors.push(message.text());
  });
  page.on('pageerror', (error) => report.errors.push(String(error)));
  page.on('response', (response) => {
    report.assets[new URL(response.url()).pathname] = response.headers()['content-type'];
  });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-container .CodeMirror', { timeout: 30000 });
  report.rendered = true;

  await page.evaluate((key) => {
    const editors = [...document.querySelectorAll('.CodeMirror')].map((e) => e.CodeMirror);
    const headers = editors.find((e) => e.getValue().includes('X-Purpose'));
    headers.setValue(JSON.stringify({ Authorization: `Bearer ${key}`, 'X-Purpose': 'support' }));
    editors[0].setValue('{ __typename }');
  }, key);
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(() =>
    document.querySelector('.result-window')?.textContent.includes('__typename'),
  );
  report.result = await page.evaluate(() => document.querySelector('.result-window').textContent);
  // What an earlier version of the page persisted must go too.
  await page.evaluate(() =>
    localStorage.setItem('graphiql:headers', '{"Authorization": "Bearer idg_persisted_before"}'),
  );
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('.graphiql-container .CodeMirror', { timeout: 30000 });
  report.storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  report.editorsAfterReload = await page.evaluate(() =>
    [...document.querySelectorAll('.CodeMirror')].map((e) => e.CodeMirror.getValue()).join('\n'),
  );
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
