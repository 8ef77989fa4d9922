package portal_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/internal/browsertest"
)

// The submit form in a real browser, under the portal's CSP: signing in
// by typing, the cost worked out by the static script as the fields
// change, and the job submitted with the button, the balance falling.
func TestSubmitInBrowser(t *testing.T) {
	browser := browsertest.Chromium(t)
	s := newSite(t)
	s.gpuType("A100", 2, 0)
	s.gpuType("T4", 1, 0)
	u := s.user("ada")
	s.grant(u.ID, 20)

	bctx := browsertest.Start(t, browser, 390, 844) // a phone
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(s.url("/"))), "the browser did not start")
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	css := func(q string) chromedp.CSS { return chromedp.CSS(q) }

	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), "ada"),
		chromedp.SendKeys(css("#password"), "ada password"),
		chromedp.Click(css("main button[type=submit]")),
		chromedp.WaitVisible(css("#balance")),
	), "signing in")
	balance, err := chromedp.Run(ctx, chromedp.Text(css("#balance")))
	require.NoError(t, err)
	assert.Equal(t, "20 credits", balance)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(s.url("/portal/jobs/new")),
		chromedp.WaitVisible(css("#estimated_hours")),
		chromedp.SendKeys(css("#command"), "python train.py"),
		chromedp.SetValue(css("#gpu_count"), ""),
		chromedp.SendKeys(css("#gpu_count"), "3"),
		chromedp.SendKeys(css("#estimated_hours"), "1.5"),
	), "filling in the form")
	cost, err := chromedp.Run(ctx, chromedp.Text(css("#cost")))
	require.NoError(t, err)
	assert.Contains(t, cost, "This job costs 9 credits: 2 credits a GPU-hour × 3 GPUs × 1.5 hours.", "the script worked it out as the fields changed")

	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(css("#gpu_type"), "T4"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("gpu_type").dispatchEvent(new Event("change", {bubbles: true}))`)))
	cost, err = chromedp.Run(ctx, chromedp.Text(css("#cost")))
	require.NoError(t, err)
	assert.Contains(t, cost, "This job costs 4.5 credits")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(css(`button[value=submit]`)),
		chromedp.WaitVisible(css("#job-status")),
	), "submitting")
	flash, err := chromedp.Run(ctx, chromedp.Text(css(".flash")))
	require.NoError(t, err)
	assert.Contains(t, flash, "4.5 credits are charged")
	assert.Equal(t, gaas.Credits(15500), s.balance(u.ID))

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(s.url("/")), chromedp.WaitVisible(css("#balance"))))
	balance, err = chromedp.Run(ctx, chromedp.Text(css("#balance")))
	require.NoError(t, err)
	assert.Equal(t, "15.5 credits", strings.TrimSpace(balance))
}
