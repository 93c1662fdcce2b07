// Loads a page in headless Chromium that sends events to the service with a
// real browser SDK, from another origin (http://shop.test:PORT, resolved to
// loopback by Chromium), and clicks through it.
//
// Usage: node drive.mjs SERVICE_URL WRITE_KEY SCENARIO [SCREENSHOT.png]
//   SCENARIO: segment (analytics.js from @segment/analytics-next),
//             rudderstack (@rudderstack/analytics-js), tracker (the
//             service's own /js/script.js, on a site whose domain is shop.test)
//             or tracker-ignored (the same from localhost and opted out)
// Prints one JSON object: the requests the page made to the service with
// their statuses, and the page's errors. Exits non-zero when the page could
// not run its scenario.
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const [service, writeKey, scenario, screenshot] = process.argv.slice(2)
const here = dirname(fileURLToPath(import.meta.url))
const vendor = {
  '/vendor/segment.js': '@segment/analytics-next/dist/umd/index.js',
  '/vendor/rudderstack.js': '@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js',
}

// Each page records what its SDK reported in window.outcome and sets
// window.ready once its steps are queued; the driver then acts on it.
const pages = {
  segment: `<!doctype html><html><head><title>Shop</title>
<script src="/vendor/segment.js"></script></head><body>
<h1>Shop</h1><button id="signup">Sign up</button>
<script>
  window.outcome = { sent: 0, errors: [] };
  const analytics = AnalyticsNext.AnalyticsBrowser.load(
    { writeKey: ${JSON.stringify(writeKey)}, cdnURL: ${JSON.stringify(service)} });
  const count = (promise) => promise.then(() => window.outcome.sent++,
    (e) => window.outcome.errors.push(String(e)));
  count(analytics.page('Home'));
  document.getElementById('signup').addEventListener('click', () => {
    count(analytics.track('Signed Up', { plan: 'pro' }));
  });
  window.navigateTo = (path, name) => {
    history.pushState({}, '', path);
    count(analytics.page(name));
  };
  window.identify = () => count(analytics.identify('user-1', { email: 'ada@shop.example' }));
  window.ready = true;
</script></body></html>`,
  rudderstack: `<!doctype html><html><head><title>Shop</title>
<script src="/vendor/rudderstack.js"></script></head><body>
<h1>Shop</h1><button id="signup">Sign up</button>
<script>
  window.outcome = { sent: 0, errors: [] };
  const analytics = new rudderanalytics.RudderAnalytics();
  analytics.load(${JSON.stringify(writeKey)}, ${JSON.stringify(service)}, {
    configUrl: ${JSON.stringify(service)},
    onLoaded: () => { window.outcome.loaded = true; },
  });
  const done = () => { window.outcome.sent++; };
  analytics.page('Home', {}, done);
  document.getElementById('signup').addEventListener('click', () => {
    analytics.track('Signed Up', { plan: 'pro' }, done);
  });
  window.navigateTo = (path, name) => {
    history.pushState({}, '', path);
    analytics.page(name, {}, done);
  };
  window.identify = () => analytics.identify('user-1', { email: 'ada@shop.example' }, done);
  window.ready = true;
</script></body></html>`,
  // The service's own tracker, as a site pastes it (with the stub that
  // queues custom events sent before the script has loaded).
  tracker: `<!doctype html><html><head><title>Shop</title>
<script>window.plausible = window.plausible || function () { (window.plausible.q = window.plausible.q || []).push(arguments) }</script>
<script defer data-domain="shop.test" src="${service}/js/script.js"></script></head><body>
<h1>Shop</h1><button id="signup">Sign up</button>
<p><a id="outbound" href="https://partner.example/offer" target="_blank">Partner</a>
<a id="download" href="/files/guide.pdf" target="_blank">Guide</a></p>
<script>
  window.outcome = { sent: 0, errors: [] };
  document.getElementById('signup').addEventListener('click', () => {
    plausible('Signup', { props: { plan: 'pro' }, callback: (result) => {
      if (result.status === 202) window.outcome.sent++; else window.outcome.errors.push(JSON.stringify(result));
    } });
  });
  window.navigateTo = (path) => history.pushState({}, '', path);
  window.hide = () => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  };
  window.ready = true;
</script></body></html>`,
  // The tracker where it must send nothing: from localhost, and from a
  // browser that opted out. A queued custom event reports why it was not sent.
  'tracker-ignored': `<!doctype html><html><head><title>Shop</title>
<script>
  if (location.search === '?optout') localStorage.setItem('analytics_ignore', 'true');
  window.outcome = { ignored: [] };
  window.plausible = window.plausible || function () { (window.plausible.q = window.plausible.q || []).push(arguments) };
  plausible('Signup', { callback: (result) => window.outcome.ignored.push(result.ignored || String(result.status)) });
</script>
<script defer data-domain="shop.test" src="${service}/js/script.js"></script></head><body><h1>Shop</h1></body></html>`,
}

if (!pages[scenario]) {
  console.error(`unknown scenario ${scenario}; one of ${Object.keys(pages).join(', ')}`)
  process.exit(2)
}

// The tracker's steps: each waits for the service to answer the event it sends.
async function runTracker(page, port) {
  const answered = (name) => page.waitForResponse((response) => {
    if (!response.url().startsWith(`${service}/api/event`)) return false
    // Beacons (engagement on leaving) show no body to the driver.
    const body = response.request().postData()
    if (body === null) return name === 'engagement'
    try {
      return JSON.parse(body).n === name
    } catch {
      return false
    }
  }, { timeout: 15000 })
  const landing = answered('pageview')
  await page.goto(`http://shop.test:${port}/tracker.html?utm_source=newsletter`, { referer: 'https://news.ycombinator.com/' })
  await landing
  await page.waitForFunction(() => window.ready === true)
  const signup = answered('Signup')
  await page.click('#signup')
  await signup
  await page.waitForFunction(() => window.outcome.sent >= 1, null, { timeout: 15000 })
  const pricing = answered('pageview')
  await page.evaluate(() => window.navigateTo('/pricing'))
  await pricing
  const outbound = answered('Outbound Link: Click')
  await page.click('#outbound')
  await outbound
  const download = answered('File Download')
  await page.click('#download')
  await download
  const engagement = answered('engagement')
  await page.evaluate(() => window.hide())
  await engagement
}

const site = createServer(async (request, response) => {
  const path = new URL(request.url, 'http://shop.test').pathname
  if (vendor[path]) {
    response.writeHead(200, { 'content-type': 'text/javascript' })
    response.end(await readFile(join(here, 'node_modules', vendor[path])))
  } else if (path === `/${scenario}.html` || path === '/pricing') {
    response.writeHead(200, { 'content-type': 'text/html' })
    response.end(pages[scenario])
  } else if (path === '/favicon.ico') {
    response.writeHead(204)
    response.end()
  } else {
    response.writeHead(404)
    response.end()
  }
})
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve))
const port = site.address().port

// Playwright starts Chromium with a fresh temporary profile of its own.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run',
    '--host-resolver-rules=MAP shop.test 127.0.0.1',
  ],
})
const result = { requests: [], pageErrors: [], consoleErrors: [], failedResponses: [] }
let failed = null
try {
  const page = await browser.newPage({ userAgent: process.env.USER_AGENT || undefined })
  page.on('pageerror', (error) => result.pageErrors.push(String(error)))
  page.on('console', (message) => {
    if (message.type() === 'error') result.consoleErrors.push(message.text())
  })
  page.on('response', (response) => {
    if (response.status() >= 400) result.failedResponses.push(`${response.status()} ${response.url()}`)
    if (response.url().startsWith(service)) {
      result.requests.push({
        method: response.request().method(),
        path: new URL(response.url()).pathname,
        status: response.status(),
      })
    }
  })
  // Links that open a tab are followed no further.
  page.context().on('page', (opened) => opened.close())
  if (scenario === 'tracker') {
    await runTracker(page, port)
  } else if (scenario === 'tracker-ignored') {
    for (const [origin, query] of [[`http://localhost:${port}`, ''], [`http://shop.test:${port}`, '?optout']]) {
      await page.goto(`${origin}/tracker-ignored.html${query}`)
      await page.waitForFunction(() => window.outcome.ignored.length >= 1, null, { timeout: 15000 })
      result.ignored = (result.ignored || []).concat(await page.evaluate(() => window.outcome.ignored))
    }
    // Time for anything sent after all to arrive.
    await page.waitForTimeout(500)
  } else {
    await page.goto(`http://shop.test:${port}/${scenario}.html`)
    await page.waitForFunction(() => window.ready === true)
    await page.waitForFunction(() => window.outcome.sent >= 1, null, { timeout: 15000 })
    await page.click('#signup')
    await page.evaluate(() => window.navigateTo('/pricing', 'Pricing'))
    await page.evaluate(() => window.identify())
    await page.waitForFunction(() => window.outcome.sent >= 4, null, { timeout: 15000 })
  }
  result.outcome = await page.evaluate(() => window.outcome)
  result.userAgent = await page.evaluate(() => navigator.userAgent)
  if (screenshot) await page.screenshot({ path: screenshot })
} catch (error) {
  failed = error
} finally {
  await browser.close()
  site.close()
}
console.log(JSON.stringify(result))
if (failed) {
  console.error(String(failed))
  process.exit(1)
}
