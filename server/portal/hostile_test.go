package portal_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
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

// A user's pages count against their requests in flight
// (-requests-per-user) as their API requests do: past the limit, 429,
// and no one else is held back.
func TestPagesInFlightPerUser(t *testing.T) {
	s := newSite(t, siteOptions{cfg: server.Config{RequestsPerUser: 2}})
	b, _ := s.signedIn("ada")
	bob, _ := s.signedIn("bob")
	form := url.Values{"csrf": {b.csrfOf()}, "job": {"999"}}.Encode()

	// Two posts whose bodies trickle: each is in flight until it is sent.
	var (
		writers []*io.PipeWriter
		answers = make(chan int, 2)
	)
	for range 2 {
		body, w := io.Pipe()
		writers = append(writers, w)
		t.Cleanup(func() { w.CloseWithError(io.ErrUnexpectedEOF) }) // before the server closes
		req, err := http.NewRequest(http.MethodPost, s.url("/portal/jobs/cancel"), body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.srv.URL)
		go func() {
			resp, err := b.client.Do(req)
			if err != nil {
				answers <- 0
				return
			}
			resp.Body.Close()
			answers <- resp.StatusCode
		}()
	}
	require.Eventually(t, func() bool {
		b.get("/portal/jobs")
		return b.status == http.StatusTooManyRequests
	}, 10*time.Second, 10*time.Millisecond, "a third request of ada's is refused")
	assert.Contains(t, b.page, "too many pages loading at once")
	tok, err := s.auth.Login(context.Background(), gaas.LoginRequest{Username: "ada", Password: "ada password"})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, s.url("/me"), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	assert.Equal(t, http.StatusTooManyRequests, b.raw(req).StatusCode, "the API and the portal are one count")
	bob.get("/portal/jobs")
	assert.Equal(t, http.StatusOK, bob.status, "another user is not held back")

	for _, w := range writers {
		_, err := io.WriteString(w, form)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	for range writers {
		assert.Equal(t, http.StatusNotFound, <-answers, "the held posts are answered: no such job")
	}
	b.get("/portal/jobs")
	assert.Equal(t, http.StatusOK, b.status, "once they end, the next is let in")
}

// A sign-in starts a session of a new token and a new CSRF secret: the
// session the browser held before ends, its forms' token is refused, and
// the sign-in form's token is no token of the session.
func TestSignInRotatesSession(t *testing.T) {
	s := newSite(t)
	s.user("bea")
	b, _ := s.signedIn("ada")
	before, oldCSRF := b.cookie("gaas_session").Value, b.csrfOf()
	pre := b.cookie("gaas_csrf")
	require.NotNil(t, pre, "the sign-in form's cookie is still there")

	b.post("/portal/sign-in", url.Values{"csrf": {pre.Value}, "username": {"bea"}, "password": {"bea password"}})
	require.Equal(t, http.StatusOK, b.status, b.page)
	assert.Contains(t, b.page, `<span class="who">bea</span>`)
	after := b.cookie("gaas_session").Value
	assert.NotEqual(t, before, after)
	assert.NotEqual(t, oldCSRF, b.csrfOf())

	old := s.browser()
	req, err := http.NewRequest(http.MethodGet, s.url("/"), nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "gaas_session", Value: before})
	resp := old.raw(req)
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "ada's session has ended")

	for name, token := range map[string]string{"the_old_sessions": oldCSRF, "the_sign_in_forms": pre.Value} {
		t.Run(name, func(t *testing.T) {
			b.post("/portal/sign-out", url.Values{"csrf": {token}})
			assert.Equal(t, http.StatusForbidden, b.status)
			b.get("/")
			assert.Equal(t, "/", b.url.Path, "still signed in: nothing was changed")
		})
	}
}

// A form larger than the portal reads (64 KiB) is 413 and changes
// nothing; one of more fields than Go parses (10,000) is 400.
func TestOversizedForms(t *testing.T) {
	s := newSite(t)
	b, _ := s.signedIn("ada")
	csrf := b.csrfOf()
	b.post("/portal/sign-out", url.Values{"csrf": {csrf}, "pad": {strings.Repeat("x", 64<<10)}})
	assert.Equal(t, http.StatusRequestEntityTooLarge, b.status)
	assert.Contains(t, b.page, "larger than 64 KiB")
	b.post("/portal/sign-out", url.Values{"csrf": {csrf}, "a": make([]string, 10001)})
	assert.Equal(t, http.StatusBadRequest, b.status)
	assert.Contains(t, b.page, "nothing was changed")
	b.get("/")
	assert.Equal(t, "/", b.url.Path, "still signed in")
}
