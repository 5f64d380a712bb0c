// What the Chromium scripts (gateway_chromium.mjs, account_chromium.mjs) share: the JSON
// report on stdout, steps that record their outcome, environment lookup, a hard time limit,
// screenshots at phone and desktop widths, and launching Debian's Chromium headless.

export const out = { steps: {}, ok: false, screenshots: [] }

export function env (name, def) {
  const v = process.env[name]
  if (v === undefined || v === '') {
    if (def === undefined) throw new Error(`missing required environment variable ${name}`)
    return def
  }
  return v
}

export function assert (cond, message) {
  if (!cond) throw new Error(message)
}

/// Run one named step; its outcome, time and error go into the report.
export async function step (name, fn) {
  const rec = {}
  out.steps[name] = rec
  const t0 = Date.now()
  try {
    const value = await fn(rec)
    rec.ok = true
    return value
  } catch (err) {
    rec.ok = false
    rec.error = String(err?.message ?? err).split('\n').slice(0, 8).join('\n')
    throw err
  } finally {
    rec.ms = Date.now() - t0
  }
}

/// Screenshots of the page at 390 px and 1280 px into `dir` (when given).
export async function shoot (page, dir, name) {
  if (!dir) return
  for (const [label, width, height] of [['phone', 390, 844], ['desktop', 1280, 800]]) {
    await page.setViewportSize({ width, height })
    const path = `${dir}/${name}-${label}.png`
    await page.screenshot({ path, fullPage: true })
    out.screenshots.push(path)
  }
}

/// Headless Chromium (CHROMIUM, default /usr/bin/chromium) with `extraArgs`.
export async function launch (extraArgs = []) {
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath: env('CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', ...extraArgs]
  })
}

/// Run `main(setBrowser)` within `limitMs`; print the report and exit 0 only when it passed.
export async function run (limitMs, main) {
  let browser
  const timer = setTimeout(() => {
    out.error = 'timed out'
    console.log(JSON.stringify(out))
    process.exit(1)
  }, limitMs)
  try {
    await main((b) => { browser = b })
    out.ok = true
  } catch (err) {
    out.error = String(err?.message ?? err)
  } finally {
    clearTimeout(timer)
    if (browser) await browser.close().catch(() => {})
    console.log(JSON.stringify(out))
    process.exit(out.ok ? 0 : 1)
  }
}
