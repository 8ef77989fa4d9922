package portal_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/internal/browsertest"
)

// The approval queue in a real browser on a phone: an admin signs in,
// approves one job with its row's button, and rejects the others with a
// reason, ticking them.
func TestApproveInBrowser(t *testing.T) {
	browser := browsertest.Chromium(t)
	s := newSite(t)
	s.gpuType("A100", 1, 0)
	u := s.user("ada")
	s.grant(u.ID, 20)
	j1, j2, j3 := s.job(u.ID, "A100", 1), s.job(u.ID, "A100", 2), s.job(u.ID, "A100", 3)

	bctx := browsertest.Start(t, browser, 390, 844)
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(s.url("/"))), "the browser did not start")
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	css := func(q string) chromedp.CSS { return chromedp.CSS(q) }
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), "root"),
		chromedp.SendKeys(css("#password"), "root password"),
		chromedp.Click(css("main button[type=submit]")),
		chromedp.WaitVisible(css("#balance")),
		chromedp.Click(css(`a[href="/portal/admin"]`)),
		chromedp.WaitVisible(css(`a[href="/portal/admin/queue"]`)),
		chromedp.Click(css(`a[href="/portal/admin/queue"]`)),
		chromedp.WaitVisible(css(fmt.Sprintf(`button[name=approve][value="%d"]`, j1.ID))),
		chromedp.Click(css(fmt.Sprintf(`button[name=approve][value="%d"]`, j1.ID))),
		chromedp.WaitVisible(css(".flash")),
	), "approving one")
	flash, err := chromedp.Run(ctx, chromedp.Text(css(".flash")))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("Job %d is approved.", j1.ID), flash)
	assert.Equal(t, gaas.StatusApproved, s.jobOf(j1.ID).Status)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(css(fmt.Sprintf("#job-%d", j2.ID))),
		chromedp.Click(css(fmt.Sprintf("#job-%d", j3.ID))),
		chromedp.SendKeys(css("#reason"), "no A100s this week"),
		// The page shows the approval's message until the next one loads:
		// take it away, so that the wait below is for the rejection's.
		chromedp.Evaluate[chromedp.Void](`document.querySelector(".flash").remove()`),
		chromedp.Click(css(`button[name=reject][value=selected]`)),
		chromedp.WaitVisible(css(".flash")),
	), "rejecting the ticked ones")
	flash, err = chromedp.Run(ctx, chromedp.Text(css(".flash")))
	require.NoError(t, err)
	assert.Contains(t, flash, "are rejected")
	for _, id := range []int64{j2.ID, j3.ID} {
		assert.Equal(t, gaas.StatusRejected, s.jobOf(id).Status)
		assert.Equal(t, "no A100s this week", s.jobOf(id).EndReason)
	}
	assert.Equal(t, credits(19), s.balance(u.ID))
}
