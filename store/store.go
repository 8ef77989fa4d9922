// Package store keeps users, projects, accounts, allocations, the GPU
// catalogue, jobs and the ledger in SQL through bun, and implements the gaas services on
// them. Every change of credits is one transaction that changes the
// allocations, writes their ledger entries and the job together, under a
// lock of the account; a draw is a conditional UPDATE decided by the
// database.
//
// DB.Jobs, DB.Quota, DB.Users, DB.Catalogue, DB.Allocations,
// DB.Projects and DB.Schedules ask the policy about their caller on every call. DB.Accounts, the account storage package authn is built on,
// checks no caller: it is for authn and trusted set-up code; nor do
// DB.Leases and DB.Upkeep, the background worker's.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
	"github.com/uptrace/bun/migrate"

	"github.com/gaas-io/gaas/gaas"
)

// Options configure a store. The zero value is usable.
type Options struct {
	// DefaultQuota is what the default allocation of every new account
	// holds; 0 means 10 credits. Use a negative value for new accounts that
	// start with nothing.
	DefaultQuota gaas.Credits

	// DefaultQuotaPeriod, when set, makes the default quota recurring:
	// every new user gets a schedule (gaas.Schedule) of DefaultQuota
	// credits each period, from the moment they are made, in UTC, whose
	// leftover expires, and its first period at once; their default
	// allocation starts empty. Empty means a one-off grant.
	DefaultQuotaPeriod gaas.Period

	// MaxConns bounds the connections of the pool: on PostgreSQL the whole
	// pool (0 means 10), on a SQLite file the readers beside its one writer
	// (0 means 4).
	MaxConns int

	// ConnMaxLifetime closes pooled connections after this long, so that a
	// PostgreSQL fail-over or a load balancer in front of it is followed;
	// 0 means 30 minutes.
	ConnMaxLifetime time.Duration

	// StatementTimeout makes PostgreSQL abort any statement that runs
	// longer, on the server, so that nothing commits after the client gave
	// up; 0 means 30s. SQLite ignores it.
	StatementTimeout time.Duration

	// BatchTimeout bounds how long a submission waits for its answer, from
	// the call to JobService.Submit: its time in the queue and its batch's
	// transaction. A batch that cannot commit in time is rolled back and
	// its submissions answered with gaas.ErrUnavailable. 0 means 10s. A
	// server should keep it shorter than the time it allows itself to
	// write an answer, so that a client is answered rather than cut off.
	BatchTimeout time.Duration

	// BusyTimeout is how long a SQLite connection waits for a lock held by
	// another process; 0 means 5s.
	BusyTimeout time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Observer hears of every committed submission, refusal and change of
	// status; nil means no one.
	Observer Observer

	// Thresholds are the percentages of an allocation used whose crossing
	// by a charge is an allocation.threshold_crossed event, ascending; nil
	// means gaas.DefaultThresholds (80 and 100), empty and not nil none.
	Thresholds []int

	// ExpiringWithin is how long before its end an allocation that holds
	// credits is an allocation.expiring event (Upkeep.NotifyExpiring);
	// 0 means DefaultExpiringWithin, 7 days.
	ExpiringWithin time.Duration

	// MaxReportRows is the most rows a usage report may have before it is
	// refused; 0 means, and more is cut to, gaas.MaxReportRows. A site
	// may keep reports smaller.
	MaxReportRows int
}

// DefaultQuota is the balance a new account starts with unless Options say otherwise.
const DefaultQuota = 10 * gaas.Credit

// DefaultBatchTimeout is Options.BatchTimeout when it is 0.
const DefaultBatchTimeout = 10 * time.Second

// DB is an open store. Its services are safe for concurrent use.
type DB struct {
	w *bun.DB // writes; on SQLite one connection
	r *bun.DB // reads; on SQLite a pool beside the writer, elsewhere w itself

	postgres bool
	// lockRow is appended to a SELECT whose rows the transaction is about
	// to change, so that concurrent transactions queue instead of acting on
	// what they read before. SQLite needs none: it has one writer.
	lockRow string

	defaultQuota gaas.Credits
	now          func() time.Time
	observer     Observer

	// defaultQuotaPeriod makes the default quota a schedule (Options.DefaultQuotaPeriod).
	defaultQuotaPeriod gaas.Period
	thresholds         []int         // Options.Thresholds
	expiringWithin     time.Duration // Options.ExpiringWithin

	batch     *batcher
	ckpt      *checkpointer // a SQLite file's; nil otherwise
	hot       hotStatements
	closeOnce sync.Once
	closeErr  error

	Jobs        *JobService
	Quota       *QuotaService
	Users       *UserService
	Catalogue   *CatalogueService
	Allocations *AllocationService
	Projects    *ProjectService
	Schedules   *ScheduleService
	Webhooks    *WebhookService
	// Accounts is for authn and trusted set-up code: no caller check.
	Accounts *Accounts
	// Sessions keeps the portal's sign-ins, for authn: no caller check.
	Sessions *Sessions
	// Leases share periodic work among processes, and Upkeep is that
	// work, done as the system: no caller check.
	Leases *Leases
	Upkeep *Upkeep
	// Dispatch is for executors: a server authenticates them before it
	// lets them call.
	Dispatch *DispatchService
	// Executors keeps the credentials of executors on other machines.
	Executors *ExecutorService
	// Reports reads usage from the ledger.
	Reports *ReportService
}

//go:embed migrations
var migrationFiles embed.FS

// Open opens the database that dsn names and brings its schema up to date.
// dsn is one of:
//
//   - a postgres:// or postgresql:// URL, for PostgreSQL;
//   - ":memory:", for a SQLite database of its own that lives until Close;
//   - a file: URI in SQLite's URI syntax, its query parameters included;
//   - any other text is the path of a SQLite file, whatever characters it
//     holds ('?', '#', '%' and spaces are part of the name). The file is
//     created if it does not exist; its directory must.
//
// Open refuses an empty dsn, a libpq key=value string ("host=db user=gaas"),
// a URL of another scheme, and a path that is a directory or whose
// directory does not exist, with an error that says which.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	db := &DB{defaultQuota: opts.DefaultQuota, defaultQuotaPeriod: opts.DefaultQuotaPeriod, now: opts.Now, observer: opts.Observer}
	if db.defaultQuotaPeriod != "" && !db.defaultQuotaPeriod.Valid() {
		return nil, fmt.Errorf("store: default quota period %q is not one of daily, weekly, monthly, quarterly, yearly", db.defaultQuotaPeriod)
	}
	switch {
	case db.defaultQuota == 0:
		db.defaultQuota = DefaultQuota
	case db.defaultQuota < 0:
		db.defaultQuota = 0
	case db.defaultQuota > gaas.MaxCredits:
		return nil, fmt.Errorf("store: default quota %s is above the maximum %s", db.defaultQuota, gaas.MaxCredits)
	}
	batchTimeout := opts.BatchTimeout
	switch {
	case batchTimeout == 0:
		batchTimeout = DefaultBatchTimeout
	case batchTimeout < 0:
		return nil, fmt.Errorf("store: batch timeout %s is negative", batchTimeout)
	}
	if db.now == nil {
		db.now = time.Now
	}
	db.thresholds, db.expiringWithin = opts.Thresholds, opts.ExpiringWithin
	if db.thresholds == nil {
		db.thresholds = gaas.DefaultThresholds
	}
	if err := gaas.ValidThresholds(db.thresholds); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	switch {
	case db.expiringWithin == 0:
		db.expiringWithin = DefaultExpiringWithin
	case db.expiringWithin < 0:
		return nil, fmt.Errorf("store: expiring within %s is negative", db.expiringWithin)
	}
	if db.observer == nil {
		db.observer = nopObserver{}
	}
	var err error
	if IsPostgres(dsn) {
		err = db.openPostgres(ctx, dsn, opts)
	} else {
		err = db.openSQLite(ctx, dsn, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.prepareHot(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.Jobs = &JobService{db: db}
	db.Quota = &QuotaService{db: db}
	db.Users = &UserService{db: db}
	db.Catalogue = &CatalogueService{db: db}
	db.Allocations = &AllocationService{db: db}
	db.Projects = &ProjectService{db: db}
	db.Schedules = &ScheduleService{db: db}
	db.Webhooks = &WebhookService{db: db}
	db.Accounts = &Accounts{db: db}
	db.Sessions = &Sessions{db: db}
	db.Leases = &Leases{db: db}
	db.Upkeep = &Upkeep{db: db}
	db.Dispatch = &DispatchService{db: db}
	db.Executors = &ExecutorService{db: db}
	db.Reports = &ReportService{db: db, maxRows: gaas.MaxReportRows}
	if opts.MaxReportRows > 0 && opts.MaxReportRows < gaas.MaxReportRows {
		db.Reports.maxRows = opts.MaxReportRows
	}
	workers := 1
	if db.postgres {
		workers = max(2, cmp(opts.MaxConns, 10)/2)
	}
	db.batch = newBatcher(db, workers, batchTimeout)
	return db, nil
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openSQLite opens a SQLite file or in-memory database.
//
// Writes go through one connection: SQLite admits one writer at a time, and
// queuing writers in Go is faster and fairer than letting several
// connections fight over the lock. Reads use a pool of their own, which WAL
// mode lets run beside the writer. Both open the same file: URI, so that a
// name that a URI would misread cannot send them to two files.
func (db *DB) openSQLite(ctx context.Context, dsn string, opts Options) error {
	target, err := parseSQLiteDSN(dsn)
	if err != nil {
		return err
	}
	keepAllocatorPages()
	busy := opts.BusyTimeout
	if busy == 0 {
		busy = 5 * time.Second
	}
	pragmas := []string{
		fmt.Sprintf("PRAGMA busy_timeout = %d", busy.Milliseconds()),
		"PRAGMA foreign_keys = ON",
		"PRAGMA synchronous = NORMAL",
		// Statement journals and temp tables in memory, not in temp files.
		"PRAGMA temp_store = MEMORY",
	}
	if !target.memory {
		pragmas = append(pragmas, "PRAGMA journal_mode = WAL",
			// The checkpointer (checkpoint.go) copies the log back off the
			// writer's path; the writer's own checkpoint is a backstop.
			fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", backstopPages))
	}
	// Writing transactions take the lock at BEGIN (BEGIN IMMEDIATE), so two
	// processes on one file queue on busy_timeout instead of failing when a
	// reader tries to become a writer.
	w := sql.OpenDB(&connector{dsn: withParam(target.uri, "_txlock", "immediate"), path: target.path, pragmas: pragmas})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db.w = bun.NewDB(w, sqlitedialect.New())
	db.r = db.w
	if !target.memory {
		readers := cmp(opts.MaxConns, 4)
		r := sql.OpenDB(&connector{dsn: target.uri, path: target.path, pragmas: append(pragmas, "PRAGMA query_only = ON")})
		r.SetMaxOpenConns(readers)
		r.SetMaxIdleConns(readers)
		db.r = bun.NewDB(r, sqlitedialect.New())
	}
	// Open the file now, so that a file that cannot be opened is said here
	// and not as the failure of the first migration.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		db.r.DB.Close()
		return fmt.Errorf("store: open: %w", err)
	}
	if !target.memory {
		db.ckpt = startCheckpointer(sql.OpenDB(&connector{dsn: target.uri, path: target.path, pragmas: pragmas}), w)
	}
	return nil
}

func cmp(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// sqliteTarget is a SQLite database as Open names it.
type sqliteTarget struct {
	uri    string // a file: URI, which every connection opens
	path   string // the file on disk, for messages; "" in memory
	memory bool
}

// parseSQLiteDSN reads a dsn that is not a PostgreSQL URL (see Open), and
// refuses one that names no SQLite database it could open.
func parseSQLiteDSN(dsn string) (sqliteTarget, error) {
	switch {
	case strings.TrimSpace(dsn) == "":
		return sqliteTarget{}, errors.New(`store: open: no database named; give a SQLite file path, ":memory:", or a postgres:// URL`)
	case dsn == ":memory:":
		return sqliteTarget{uri: "file::memory:", memory: true}, nil
	case isKeyValueDSN(dsn):
		// Not echoed: it may hold a password.
		return sqliteTarget{}, errors.New("store: open: a libpq key=value connection string is not supported; " +
			"write it as a URL, postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full")
	case strings.HasPrefix(dsn, "file:"):
		return parseFileURI(dsn)
	}
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && urlScheme.MatchString(scheme) {
		return sqliteTarget{}, fmt.Errorf("store: open: %s:// URLs are not supported; give a SQLite file path, "+
			`":memory:", a file: URI, or a postgres:// URL`, scheme)
	}
	if err := checkSQLitePath(dsn); err != nil {
		return sqliteTarget{}, err
	}
	return sqliteTarget{uri: fileURI(dsn), path: dsn}, nil
}

// urlScheme is what may come before "://" in a URL (RFC 3986).
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// libpqKeys are the keywords a libpq key=value connection string commonly
// starts with; a path that starts with one followed by "=" is taken for
// such a string rather than for a file of that odd name.
var libpqKeys = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "password": true,
	"passfile": true, "sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true,
	"connect_timeout": true, "application_name": true, "options": true, "service": true,
	"target_session_attrs": true,
}

// isKeyValueDSN reports whether dsn looks like libpq's key=value form.
func isKeyValueDSN(dsn string) bool {
	key, _, ok := strings.Cut(strings.TrimSpace(dsn), "=")
	return ok && libpqKeys[strings.ToLower(strings.TrimSpace(key))]
}

// parseFileURI reads a file: URI in SQLite's syntax. Its fragment, which
// SQLite ignores, is dropped, so that parameters can be added after its
// query.
func parseFileURI(dsn string) (sqliteTarget, error) {
	uri, _, _ := strings.Cut(dsn, "#")
	rest, query, _ := strings.Cut(strings.TrimPrefix(uri, "file:"), "?")
	if auth, ok := strings.CutPrefix(rest, "//"); ok {
		host, p, _ := strings.Cut(auth, "/")
		if host != "" && host != "localhost" {
			return sqliteTarget{}, fmt.Errorf("store: open %s: a file: URI names no host but localhost", dsn)
		}
		rest = "/" + p
	}
	path, err := url.PathUnescape(rest)
	if err != nil {
		return sqliteTarget{}, fmt.Errorf("store: open %s: %w", dsn, err)
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return sqliteTarget{}, fmt.Errorf("store: open %s: %w", dsn, err)
	}
	if path == ":memory:" || params.Get("mode") == "memory" {
		return sqliteTarget{uri: uri, memory: true}, nil
	}
	if err := checkSQLitePath(path); err != nil {
		return sqliteTarget{}, err
	}
	return sqliteTarget{uri: uri, path: path}, nil
}

// checkSQLitePath refuses a path that SQLite could not open as a database
// file, naming why: it is a directory, or its directory is missing. Other
// causes, such as permissions, are named when the open fails (cantOpen).
func checkSQLitePath(path string) error {
	if path == "" {
		return errors.New("store: open: the file: URI names no file")
	}
	if why := whyCannotOpen(path, false); why != "" {
		return fmt.Errorf("store: open %s: %s", path, why)
	}
	return nil
}

// whyCannotOpen says why SQLite cannot open the file at path, or "" when
// no cause is found. With probe, it also tries what SQLite does: open the
// file for writing (creating it) and create files beside it (its -wal and
// -shm files).
func whyCannotOpen(path string, probe bool) string {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return "is a directory; name a database file, such as " + filepath.Join(path, "gaas.db")
	}
	dir := filepath.Dir(path)
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("directory %s does not exist", dir)
	case err != nil:
		return fmt.Sprintf("directory %s: %v", dir, errors.Unwrap(err))
	case !fi.IsDir():
		return fmt.Sprintf("%s is not a directory", dir)
	case !probe:
		return ""
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return fmt.Sprintf("cannot open it for writing: %v", errors.Unwrap(err))
	}
	f.Close()
	tmp, err := os.CreateTemp(dir, ".gaas-probe-*")
	if err != nil {
		return fmt.Sprintf("cannot create files in directory %s (SQLite keeps its -wal and -shm files there): %v", dir, errors.Unwrap(err))
	}
	tmp.Close()
	os.Remove(tmp.Name())
	return ""
}

// fileURI is a file: URI for a path, whatever characters it holds.
func fileURI(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs // "//x" would otherwise read as a host
	}
	path = filepath.ToSlash(path)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path // a Windows drive letter
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath()
}

// withParam adds a query parameter to a file: URI.
func withParam(uri, key, value string) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + key + "=" + value
}

// connector opens SQLite connections and sets the pragmas on each, so that
// no connection the pool opens later runs without them.
type connector struct {
	dsn     string
	path    string // the file dsn names, to say why it cannot be opened; "" in memory
	pragmas []string
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := sqliteshim.Driver().Open(c.dsn)
	if err != nil {
		return nil, cantOpen(c.path, err)
	}
	execer, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("store: sqlite driver cannot execute statements")
	}
	for _, p := range c.pragmas {
		if _, err := execer.ExecContext(ctx, p, nil); err != nil {
			conn.Close()
			return nil, fmt.Errorf("store: %s: %w", p, cantOpen(c.path, err))
		}
	}
	return conn, nil
}

func (c *connector) Driver() driver.Driver { return sqliteshim.Driver() }

func (db *DB) migrate(ctx context.Context) error {
	dir := "migrations/sqlite"
	if db.postgres {
		dir = "migrations/postgres"
		// Replicas starting at once on an empty database take turns.
		unlock, err := db.advisoryLock(ctx, migrationLock)
		if err != nil {
			return err
		}
		defer unlock()
	}
	sub, err := fs.Sub(migrationFiles, dir)
	if err != nil {
		return err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(sub); err != nil {
		return fmt.Errorf("store: read migrations: %w", err)
	}
	m := migrate.NewMigrator(db.w, ms,
		migrate.WithTableName("schema_migrations"),
		migrate.WithLocksTableName("schema_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// Close refuses new calls, waits for those under way, answering the
// submissions already queued, and closes the database. Calls after Close
// return ErrClosed; so does a call that races it and loses. Closing again
// returns what the first Close did.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if db.batch != nil {
			db.batch.close()
		}
		db.hot.close()
		if db.ckpt != nil {
			db.closeErr = db.ckpt.close()
		}
		db.closeErr = errors.Join(db.closeErr, db.w.Close())
		if db.r != db.w {
			db.closeErr = errors.Join(db.closeErr, db.r.Close())
		}
	})
	return db.closeErr
}

// Pools returns the store's connection pools by name, for monitoring
// (prometheus/collectors.NewDBStatsCollector reads one): "writer" and,
// for a SQLite file, "reader"; on PostgreSQL one pool, "postgres".
func (db *DB) Pools() map[string]*sql.DB {
	if db.postgres {
		return map[string]*sql.DB{"postgres": db.w.DB}
	}
	pools := map[string]*sql.DB{"writer": db.w.DB}
	if db.r != db.w {
		pools["reader"] = db.r.DB
	}
	return pools
}

// healthName is the settings row that Ping writes.
const healthName = "health_check"

// Ping reports whether the database answers and takes writes: it reads,
// then rewrites one small row. A store that can read but not write (a full
// disk, a read-only file, a standby) cannot take a job, so it is not healthy.
// Failures are gaas.ErrUnavailable.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.r.NewRaw("SELECT 1").Scan(ctx, &one); err != nil {
		return fmt.Errorf("store: ping: %w", mapErr(err))
	}
	stamp := []byte(db.timestamp().Format(time.RFC3339Nano))
	err := db.tx(ctx, func(tx bun.Tx) error {
		_, err := exec(ctx, tx,
			"INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
			healthName, stamp)
		return err
	})
	if err != nil {
		if !errors.Is(err, gaas.ErrUnavailable) {
			err = unavailable(err)
		}
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// maxAttempts bounds how often a transaction that lost a serialization
// race or a deadlock is run again.
const maxAttempts = 5

// tx runs fn in one writing transaction, committed when fn returns nil. A
// transaction that PostgreSQL aborts for a serialization failure or a
// deadlock is run again, a bounded number of times, with a short pause:
// on a busy system they are expected, and not the client's error.
func (db *DB) tx(ctx context.Context, fn func(tx bun.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(tx) })
		if err == nil || attempt == maxAttempts || !isRetryable(err) {
			return mapErr(err)
		}
		select {
		case <-ctx.Done():
			return mapErr(err)
		case <-time.After(time.Duration(attempt*attempt) * time.Millisecond):
		}
	}
}

// readTx runs fn in one transaction on the readers that only reads, so
// that what it reads is one state of the database: on PostgreSQL a
// repeatable read, on SQLite a transaction's snapshot.
func (db *DB) readTx(ctx context.Context, fn func(tx bun.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: db.postgres}
	if db.postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return mapErr(db.r.RunInTx(ctx, opts, func(ctx context.Context, tx bun.Tx) error { return fn(tx) }))
}

// signingKeyName is the settings row that holds the generated token key.
const signingKeyName = "jwt_signing_key"

// SigningKey returns the key that signs tokens. The first call on a new
// database generates 32 random bytes and stores them; every later call, in
// this process or another on the same database, returns the same key.
func (db *DB) SigningKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: signing key: %w", err)
	}
	var key []byte
	err := db.tx(ctx, func(tx bun.Tx) error {
		if _, err := exec(ctx, tx,
			"INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
			signingKeyName, fresh); err != nil {
			return err
		}
		return query(ctx, tx, &key, "SELECT value FROM settings WHERE name = ?", signingKeyName)
	})
	if err != nil {
		return nil, fmt.Errorf("store: signing key: %w", mapErr(err))
	}
	return key, nil
}

// EnabledAdmins counts the admin accounts that are not disabled, for
// gaasd to say at start-up whether anyone can administer the service.
func (db *DB) EnabledAdmins(ctx context.Context) (int, error) {
	var n int
	if err := query(ctx, db.r, &n, "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled"); err != nil {
		return 0, fmt.Errorf("store: count admins: %w", mapErr(err))
	}
	return n, nil
}

// lockRows is lockRow for a SELECT of a join, locking the rows of alias
// only; with skip, rows another transaction holds are passed over, so that
// replicas claiming work share it instead of queuing for the same rows.
func (db *DB) lockRows(alias string, skip bool) string {
	if db.lockRow == "" {
		return ""
	}
	lock := db.lockRow + " OF " + alias
	if skip {
		lock += " SKIP LOCKED"
	}
	return lock
}

// timestamp is the time now as the database keeps it: UTC, to the microsecond.
func (db *DB) timestamp() time.Time { return db.now().UTC().Truncate(time.Microsecond) }

// openReadOnly opens a SQLite file that must exist, for reading only.
func openReadOnly(path string) (*bun.DB, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	} else if fi.IsDir() {
		return nil, fmt.Errorf("store: open %s: is a directory", path)
	}
	sqldb := sql.OpenDB(&connector{dsn: withParam(fileURI(path), "mode", "ro"), path: path, pragmas: []string{"PRAGMA query_only = ON"}})
	sqldb.SetMaxOpenConns(1)
	return bun.NewDB(sqldb, sqlitedialect.New()), nil
}
