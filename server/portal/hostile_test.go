package portal_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// A decision names at most a page of jobs (gaas.MaxLimit), each once:
// a form of thousands of job fields, each a transaction of its own, is
// refused before any is moved.
func TestDecideBounded(t *testing.T) {
	s := newSite(t)
	s.gpuType("A100", 1, 0)
	ada := s.user("ada")
	s.grant(ada.ID, 20)
	j := s.job(ada.ID, "A100", 1)
	b := s.admin()
	b.get("/portal/admin/queue")
	csrf := b.csrfOf()

	t.Run("more_than_a_page", func(t *testing.T) {
		form := url.Values{"csrf": {csrf}, "approve": {"selected"}, "job": {strconv.FormatInt(j.ID, 10)}}
		for id := j.ID + 1; len(form["job"]) <= gaas.MaxLimit; id++ {
			form.Add("job", strconv.FormatInt(id, 10))
		}
		b.post("/portal/jobs/decide", form)
		assert.Equal(t, http.StatusUnprocessableEntity, b.status)
		assert.Contains(t, b.page, fmt.Sprintf("At most %d jobs", gaas.MaxLimit))
		assert.Equal(t, gaas.StatusPending, s.jobOf(j.ID).Status, "nothing was changed")
	})
	t.Run("one_job_many_times", func(t *testing.T) {
		form := url.Values{"csrf": {csrf}, "approve": {"selected"}}
		for range 9000 {
			form.Add("job", strconv.FormatInt(j.ID, 10))
		}
		b.post("/portal/jobs/decide", form)
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, fmt.Sprintf("Job %d is approved.", j.ID))
		assert.NotContains(t, b.page, "was not approved", "the job is moved once, not told it moved already")
		assert.Equal(t, gaas.StatusApproved, s.jobOf(j.ID).Status)
	})
}

// However long what a form did is to tell, its message fits the cookie
// a browser keeps (4096 bytes): a longer one the browser drops.
func TestFlashFitsACookie(t *testing.T) {
	s := newSite(t)
	b := s.admin()
	b.get("/portal/admin/queue")
	form := url.Values{"csrf": {b.csrfOf()}, "reject": {"selected"}}
	for id := 1000; len(form["job"]) < gaas.MaxLimit; id++ {
		form.Add("job", strconv.Itoa(id)) // no such job: a note each
	}
	req, err := http.NewRequest(http.MethodPost, s.url("/portal/jobs/decide"), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp := b.raw(req)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	flash := setCookie(t, resp, "gaas_flash")
	assert.LessOrEqual(t, len(flash.Name)+len(flash.Value), 4096)
	b.client.Jar.SetCookies(req.URL, []*http.Cookie{flash})
	b.get("/portal/admin/queue")
	assert.Contains(t, b.page, "Job 1000 was not rejected: it is not yours to decide.")
	assert.Contains(t, b.page, "…", "the rest is cut short")
}
