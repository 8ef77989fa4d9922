package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gaas-io/gaas/store"
)

// renames is a repeatable -rename OLD=NEW flag.
type renames map[string]string

func (r renames) String() string { return fmt.Sprint(map[string]string(r)) }

func (r renames) Set(v string) error {
	from, to, ok := strings.Cut(v, "=")
	if !ok || from == "" || to == "" {
		return errors.New("must be OLD=NEW")
	}
	if _, dup := r[from]; dup {
		return fmt.Errorf("%s is renamed twice", from)
	}
	r[from] = to
	return nil
}

// runImport is "gaasd import-fastapi": it copies a database of the
// original FastAPI service into the database that -db names, all or
// nothing, and prints what it did and every anomaly it corrected. On
// stderr it shows its progress when that is a terminal, and a summary line
// always.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gaasd import-fastapi", flag.ContinueOnError)
	from := fs.String("from", "", "the FastAPI service's SQLite `file` (read only)")
	db := fs.String("db", envOr(getenv, "GAAS_DB", "gaas.db"), "the target: a SQLite `path` or a postgres:// URL (env GAAS_DB)")
	merge := fs.Bool("merge", false, "add to a database that already holds users; no id or username may collide")
	rename := renames{}
	fs.Var(rename, "rename", "rename an old user, `OLD=NEW`; repeatable. Resolves usernames that differ only in letter case")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gaasd import-fastapi -from OLD.db [-db TARGET] [-merge] [-rename OLD=NEW]...\n\n"+
			"Imports users (with their password hashes), balances and jobs from the original FastAPI\n"+
			"service's database, in one transaction; a balance of hours becomes as many credits (rate 1)\n"+
			"in the user's default allocation. Anomalies in the old data are corrected as\n"+
			"documented and reported; what cannot be imported without a decision stops the import.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
		return errors.New("import-fastapi: -from is required, and nothing else; gaasd help import-fastapi explains")
	}
	target, err := store.Open(ctx, *db, store.Options{})
	if err != nil {
		return fmt.Errorf("open database %s: %w", store.RedactDSN(*db), err)
	}
	defer target.Close()
	progress := newProgressLine(stderr, "import-fastapi", "rows", true)
	rep, err := target.ImportFastAPI(ctx, *from, store.ImportOptions{Merge: *merge, Rename: rename, Progress: progress.update})
	progress.finish()
	for _, a := range rep.Anomalies {
		fmt.Fprintln(stdout, "anomaly:", a)
	}
	if err != nil {
		return fmt.Errorf("import-fastapi: nothing was imported: %w", err)
	}
	fmt.Fprintf(stdout, "imported %d users and %d jobs from %s into %s; %d jobs charged, %d refunded, %d anomalies corrected; "+
		"each balance of hours became as many credits (rate 1) in the user's default allocation\n",
		rep.Users, rep.Jobs, *from, store.RedactDSN(*db), rep.Charged, rep.Refunded, len(rep.Anomalies))
	progress.summary(rep.Users+rep.Jobs, "rows", "written")
	return nil
}

// errUnhealthy is what "gaasd healthcheck" returns when gaasd does not
// answer, or answers that it is unhealthy; gaasd then exits 1, as Docker
// asks of a HEALTHCHECK (it reserves 2).
var errUnhealthy = errors.New("healthcheck: unhealthy")

// runHealthcheck is "gaasd healthcheck": it asks a gaasd on this machine
// for /healthz and fails unless it answers 200, so that a container image
// needs no shell or curl for its HEALTHCHECK.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gaasd healthcheck", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: gaasd healthcheck [-addr ADDRESS] [-timeout DURATION]\n\n"+
			"Asks the gaasd on this machine for /healthz; exits 0 when it answers 200, 1 otherwise.\n\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", envOr(getenv, "GAAS_ADDR", ":8000"), "the `address` gaasd listens on (env GAAS_ADDR)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("healthcheck: -addr %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnhealthy, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: /healthz answered %s", errUnhealthy, resp.Status)
	}
	return nil
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// errViolations is what "gaasd check" returns when an invariant is broken;
// gaasd then exits 1.
var errViolations = errors.New("check: invariants are broken")

// runCheck is "gaasd check": it verifies the ledger invariants of a live or
// stopped database (store.Check) and prints what it found. On stderr it
// shows its progress, rule by rule, when that is a terminal, and a summary
// line always.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gaasd check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: gaasd check [-db DATABASE]\n\n"+
			"Verifies the ledger invariants of a live or stopped database; exits 1 when one is broken.\n\n")
		fs.PrintDefaults()
	}
	db := fs.String("db", envOr(getenv, "GAAS_DB", "gaas.db"), "a SQLite `path` or a postgres:// URL (env GAAS_DB)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if _, err := os.Stat(*db); err != nil && !store.IsPostgres(*db) {
		return fmt.Errorf("check: %w", err) // do not create an empty database to check
	}
	target, err := store.Open(ctx, *db, store.Options{})
	if err != nil {
		return fmt.Errorf("open database %s: %w", store.RedactDSN(*db), err)
	}
	defer target.Close()
	// The steps of a check differ too much in cost for a rate to mean much.
	progress := newProgressLine(stderr, "check", "steps", false)
	rep, err := target.CheckWith(ctx, store.CheckOptions{Progress: progress.update})
	progress.finish()
	if err != nil {
		return err
	}
	progress.summary(rep.Users+rep.Jobs+rep.Allocations+rep.Entries, "rows", "checked")
	for _, v := range rep.Violations {
		fmt.Fprintln(stdout, "violation:", v)
	}
	fmt.Fprintf(stdout, "checked %d users, %d jobs, %d allocations and %d ledger entries of %s: %d violations\n",
		rep.Users, rep.Jobs, rep.Allocations, rep.Entries, store.RedactDSN(*db), len(rep.Violations))
	if !rep.OK() {
		return fmt.Errorf("%w: %d violations", errViolations, len(rep.Violations))
	}
	return nil
}
