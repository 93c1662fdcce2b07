// Opens the service's dashboard in headless Chromium, signs in with a read
// key and goes through the overview: top stats, the graph, a panel row
// clicked into a filter, the link reopened in a new page, a failing panel.
//
// Usage: node dashboard.mjs SERVICE_URL READ_KEY [SCREENSHOT_PREFIX]
// Prints one JSON object with what the page showed and every error or
// request outside the service; exits non-zero when a step could not run.
import { chromium } from 'playwright-core'

const [service, readKey, screenshots] = process.argv.slice(2)
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run'],
})
const result = { pageErrors: [], consoleErrors: [], foreignRequests: [] }
let failed = null

async function open (context, url) {
  const page = await context.newPage()
  page.on('pageerror', (error) => result.pageErrors.push(String(error)))
  page.on('console', (message) => {
    if (message.type() === 'error') result.consoleErrors.push(message.text())
  })
  page.on('request', (request) => {
    const url = request.url()
    if (!url.startsWith(service) && !url.startsWith('data:') && !url.startsWith('blob:')) {
      result.foreignRequests.push(url)
    }
  })
  await page.goto(url)
  return page
}

const statsShown = (page) => page.waitForFunction(
  () => document.querySelectorAll('.stat .number').length === 6, null, { timeout: 15000 })
const panelsLoaded = (page) => page.waitForFunction(
  () => [...document.querySelectorAll('.panel-body')].every(b => b.querySelector('ol, .error')),
  null, { timeout: 15000 })

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } })
  const page = await open(context, `${service}/`)
  await page.waitForSelector('#read-key')
  result.signInShown = true
  await page.fill('#read-key', readKey)
  await page.click('button[type="submit"]')
  await statsShown(page)
  await page.waitForSelector('.chart polyline', { timeout: 15000 })
  await panelsLoaded(page)
  await page.waitForFunction(() => document.body.dataset.ready === 'overview', null, { timeout: 15000 })
  result.ready = await page.evaluate(() => performance.getEntriesByName('ready').length === 1)
  result.project = await page.textContent('#project')
  result.stats = await page.$$eval('.stat', (stats) => stats.map(s => [
    s.querySelector('.label').textContent, s.querySelector('.number').textContent]))
  result.panels = await page.$$eval('.panel', (panels) => panels.map(p => ({
    title: p.querySelector('h2').textContent,
    rows: [...p.querySelectorAll('.rows li .name')].map(n => n.textContent),
    error: p.querySelector('.error')?.textContent ?? null,
  })))
  result.keyInUrl = page.url().includes(readKey)
  if (screenshots) await page.screenshot({ path: `${screenshots}-overview.png`, fullPage: true })

  // A row of the Sources panel becomes a filter, in the URL and as a pill.
  const source = page.locator('.panel').first().locator('.rows button.name').first()
  result.clickedSource = await source.textContent()
  await source.click()
  await page.waitForSelector('.pills li')
  await statsShown(page)
  await panelsLoaded(page)
  result.filteredUrl = page.url()
  result.pills = await page.$$eval('.pills li span', (pills) => pills.map(p => p.textContent))
  result.filteredStats = await page.$$eval('.stat .number', (n) => n.map(x => x.textContent))

  // The same link, opened by someone signed in, shows the same view.
  const signedIn = await browser.newContext({ viewport: { width: 1280, height: 1000 } })
  await signedIn.addInitScript((key) => sessionStorage.setItem('analytics.read_key', key), readKey)
  const again = await open(signedIn, result.filteredUrl)
  await statsShown(again)
  result.reopenedStats = await again.$$eval('.stat .number', (n) => n.map(x => x.textContent))
  result.reopenedPills = await again.$$eval('.pills li span', (pills) => pills.map(p => p.textContent))

  // Dark theme and a phone's width.
  const dark = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'dark' })
  await dark.addInitScript((key) => sessionStorage.setItem('analytics.read_key', key), readKey)
  const phone = await open(dark, `${service}/?period=7d&compare=previous`)
  await statsShown(phone)
  await panelsLoaded(phone)
  result.phoneDeltas = await phone.$$eval('.stat .delta', (d) => d.length)
  if (screenshots) await phone.screenshot({ path: `${screenshots}-phone-dark.png`, fullPage: true })
  await dark.close()

  // The funnel of two events, and the retention grid.
  const funnel = await open(signedIn, `${service}/?view=funnels&steps=${encodeURIComponent(JSON.stringify(['page', 'Signup']))}`)
  await funnel.waitForSelector('.funnel li:nth-child(2)', { timeout: 15000 })
  result.funnel = await funnel.$$eval('.funnel li', (steps) => steps.map(s => [
    s.querySelector('.funnel-name').textContent, s.querySelector('.funnel-facts').textContent]))
  if (screenshots) await funnel.screenshot({ path: `${screenshots}-funnel.png`, fullPage: true })
  await funnel.close()
  const cohorts = await open(signedIn, `${service}/?view=retention&start=page&return=page&period_of=day`)
  await cohorts.waitForSelector('.cohorts tbody tr', { timeout: 15000 })
  result.cohortSizes = await cohorts.$$eval('.cohorts tbody tr', (rows) => rows.map(r => r.children[1].textContent))
  if (screenshots) await cohorts.screenshot({ path: `${screenshots}-retention.png`, fullPage: true })
  await cohorts.close()

  // The funnel broken down by channel.
  const split = await open(signedIn, `${service}/?view=funnels&breakdown=visit%3Achannel&steps=${encodeURIComponent(JSON.stringify(['page', 'Signup']))}`)
  await split.waitForSelector('.breakdown-value', { timeout: 15000 })
  result.funnelBreakdown = await split.$$eval('.breakdown-value', (values) => values.map(v => v.textContent))
  await split.close()

  // A goal's properties break it down.
  const goal = await open(signedIn, `${service}/?filters=${encodeURIComponent(JSON.stringify([['is', 'event:name', ['Signup']]]))}`)
  await goal.waitForFunction(() => [...document.querySelectorAll('.panel h2')].some(h => h.textContent === 'Properties of Signup'), null, { timeout: 15000 })
  await panelsLoaded(goal)
  result.goalProperties = await goal.$$eval('.panel', (panels) => panels
    .filter(p => p.querySelector('h2').textContent === 'Properties of Signup')
    .map(p => ({ tabs: [...p.querySelectorAll('.tabs button')].map(b => b.textContent), rows: [...p.querySelectorAll('.rows li .name')].map(n => n.textContent) })))
  await goal.close()

  // Paths, stickiness and lifecycle each draw their answer.
  result.views = {}
  for (const [view, drawn] of [['paths', '.flow-node'], ['stickiness', '.rows li'], ['lifecycle', '.lifecycle tbody tr']]) {
    const shown = await open(signedIn, `${service}/?view=${view}&event=page`)
    await shown.waitForSelector(`${drawn}, .error`, { timeout: 15000 })
    result.views[view] = await shown.$$eval(drawn, (items) => items.map(i => i.textContent))
    if (screenshots) await shown.screenshot({ path: `${screenshots}-${view}.png`, fullPage: true })
    await shown.close()
  }

  // Sessions: the totals, the chart and the table by entry page.
  const visits = await open(signedIn, `${service}/?view=sessions&by=session%3Aentry_page`)
  await visits.waitForSelector('.sessions-table tbody tr', { timeout: 15000 })
  await visits.waitForSelector('.chart polyline', { timeout: 15000 })
  result.sessionStats = await visits.$$eval('.stat', (stats) => stats.map(s => [
    s.querySelector('.label').textContent, s.querySelector('.number').textContent]))
  result.sessionRows = await visits.$$eval('.sessions-table tbody tr', (rows) => rows.map(r => [...r.children].map(c => c.textContent)))
  if (screenshots) await visits.screenshot({ path: `${screenshots}-sessions.png`, fullPage: true })
  await visits.close()

  // A refused query shows in its panel, the rest of the page stays (the
  // browser logs its 400s: errors before this step are counted apart).
  result.consoleErrorsBefore = [...result.consoleErrors]
  const broken = await open(signedIn, `${service}/?filters=${encodeURIComponent(JSON.stringify([['is', 'event:nope', ['x']]]))}`)
  await broken.waitForSelector('.panel .error', { timeout: 15000 })
  result.panelError = await broken.textContent('.panel .error')
  result.brokenPanels = await broken.$$eval('.panel', (p) => p.length)
  await signedIn.close()
} catch (error) {
  failed = error
} finally {
  await browser.close()
}
console.log(JSON.stringify(result))
if (failed) {
  console.error(String(failed))
  process.exit(1)
}
