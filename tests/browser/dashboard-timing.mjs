// Times the dashboard's overview in headless Chromium: from navigation to
// the page marking itself ready (every top stat, the graph and every panel
// drawn), each load in a fresh browser context (an empty cache).
//
// Usage: node dashboard-timing.mjs URL READ_KEY LOADS
//   URL: the page to open, e.g. http://127.0.0.1:18083/?period=30d
// Prints one JSON object: each load's milliseconds, their p50, and the bytes
// transferred by the last load (the page's own files and the API answers).
import { chromium } from 'playwright-core'

const [url, readKey, loads = '10'] = process.argv.slice(2)
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run'],
})
const times = []
let transferred = null
const errors = []
try {
  for (let i = 0; i < Number(loads); i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } })
    await context.addInitScript((key) => sessionStorage.setItem('analytics.read_key', key), readKey)
    const page = await context.newPage()
    page.on('pageerror', (error) => errors.push(String(error)))
    await page.goto(url)
    await page.waitForFunction(() => document.body.dataset.ready === 'overview', null, { timeout: 120000 })
    const seen = await page.evaluate(() => {
      const ready = performance.getEntriesByName('ready')[0].startTime
      const navigation = performance.getEntriesByType('navigation')[0]
      const resources = performance.getEntriesByType('resource')
      const sum = (entries) => entries.reduce((n, e) => n + e.transferSize, 0)
      return {
        ready,
        page: navigation.transferSize + sum(resources.filter(r => r.name.includes('/dashboard/'))),
        api: sum(resources.filter(r => r.name.includes('/v1/'))),
        requests: resources.filter(r => r.name.includes('/v1/')).length,
        errors: document.querySelectorAll('.error').length,
      }
    })
    if (seen.errors) errors.push(`${seen.errors} panels show an error`)
    times.push(Math.round(seen.ready))
    transferred = { page_bytes: seen.page, api_bytes: seen.api, api_requests: seen.requests }
    await context.close()
  }
} finally {
  await browser.close()
}
const sorted = [...times].sort((a, b) => a - b)
console.log(JSON.stringify({ loads_ms: times, p50_ms: sorted[Math.floor((sorted.length - 1) / 2)], ...transferred, errors }))
