package portal

import "net/http"

// homePage is the data of the signed-in user's own page.
type homePage struct{}

func (p *site) handleHome() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.render(w, r, http.StatusOK, "home", "Your GPU time", homePage{})
	})
}
