package portal

import (
	"net/http"

	"github.com/gaas-io/gaas/gaas"
)

// ledgerPage is the data of the user's ledger.
type ledgerPage struct {
	Entries []gaas.LedgerEntry
	Pager   pager
}

// handleLedger shows the user's own ledger, oldest first, a page at a time.
func (p *site) handleLedger() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		me := callerID(r)
		page, err := p.svc.Quota.Ledger(r.Context(), me, gaas.LedgerRequest{UserID: me, Page: gaas.Page{Cursor: r.URL.Query().Get("cursor")}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		p.render(w, r, http.StatusOK, "ledger", "Your ledger", ledgerPage{Entries: page.Items, Pager: p.pageLinks(r, page.NextCursor)})
	})
}
