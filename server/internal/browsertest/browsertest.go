// Package browsertest starts headless Chromium for the tests that drive
// pages as a person would: /docs, and the portal.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium finds the browser: GAAS_TEST_CHROMIUM names it (.ci/run sets
// it, so that there the tests must run), else chromium on the PATH;
// without one the test is skipped.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("GAAS_TEST_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium: set GAAS_TEST_CHROMIUM or install Debian's chromium")
	}
	return p
}

// Start starts the browser at path, headless, with a window of width ×
// height and a profile of its own, and returns the context that drives
// its tab. The browser stops when the test ends. Its first action starts
// it.
func Start(t testing.TB, path string, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}
