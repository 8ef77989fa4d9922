package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// openPostgres opens a pool on a PostgreSQL database through pgx.
//
// pgx rather than bun's pgdriver: pgx verifies TLS certificates as libpq
// does, and its statement timeout is the server's own (statement_timeout),
// so a statement the client gave up on does not commit afterwards.
func (db *DB) openPostgres(ctx context.Context, dsn string, opts Options) error {
	cfg, err := pgx.ParseConfig(verifiedTLS(dsn))
	if err != nil {
		return fmt.Errorf("store: postgres URL: %w", redactErr(err, dsn))
	}
	timeout := opts.StatementTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(timeout.Milliseconds())
	cfg.RuntimeParams["timezone"] = "UTC"
	// Literals are read as the SQL standard says: with
	// standard_conforming_strings off, a backslash in a quoted literal
	// escapes the quote that closes it, and a value quoted for standard
	// strings can end the literal and go on as SQL. The store passes every
	// value it is given as a bind parameter, which no setting reinterprets;
	// this is the defence behind that, for what bun still formats into SQL
	// text (its migrator's bookkeeping, anything a later change lets
	// through). A database or role may default to off, so every
	// connection asks for on, refuses the \' escape altogether
	// (backslash_quote), and is checked before use (requireStandardStrings).
	cfg.RuntimeParams["standard_conforming_strings"] = "on"
	cfg.RuntimeParams["backslash_quote"] = "off"
	cfg.AfterConnect = requireStandardStrings(cfg.AfterConnect)
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	conns := cmp(opts.MaxConns, 10)
	lifetime := opts.ConnMaxLifetime
	if lifetime == 0 {
		lifetime = 30 * time.Minute
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(conns)
	sqldb.SetMaxIdleConns(conns)
	sqldb.SetConnMaxLifetime(lifetime)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	db.w = bun.NewDB(sqldb, pgdialect.New())
	db.r = db.w
	db.postgres = true
	db.lockRow = " FOR UPDATE"
	pingCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+time.Second)
	defer cancel()
	if err := sqldb.PingContext(pingCtx); err != nil {
		sqldb.Close()
		return fmt.Errorf("store: connect to postgres at %s: %w", cfg.Host, redactErr(err, dsn))
	}
	return nil
}

// requireStandardStrings fails a new connection on which the server does
// not read literals by the standard's rules, whatever asked for them:
// something between the store and the server (a pooler) may not pass the
// connection's parameters on. then runs afterwards, if not nil.
func requireStandardStrings(then pgconn.AfterConnectFunc) pgconn.AfterConnectFunc {
	return func(ctx context.Context, conn *pgconn.PgConn) error {
		res, err := conn.Exec(ctx, "SHOW standard_conforming_strings").ReadAll()
		if err != nil {
			return fmt.Errorf("store: show standard_conforming_strings: %w", err)
		}
		if len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != "on" {
			return errors.New("store: the connection has standard_conforming_strings off and it cannot be set on;" +
				" the store does not run on a server that reads backslashes in literals as escapes (check what sits between it and PostgreSQL)")
		}
		if then != nil {
			return then(ctx, conn)
		}
		return nil
	}
}

// verifiedTLS makes sslmode=require mean verify-full: a URL that asks for
// TLS gets TLS whose certificate is checked, chain and name, against the
// system's roots or the sslrootcert it names. libpq's require encrypts
// without checking whom it talks to, which a man in the middle defeats.
// verify-ca and verify-full keep their meaning; prefer, allow and disable
// do not ask for TLS.
func verifiedTLS(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	if q.Get("sslmode") != "require" {
		return dsn
	}
	q.Set("sslmode", "verify-full")
	u.RawQuery = q.Encode()
	return u.String()
}

// RedactDSN returns dsn with any password replaced by "xxxxx", for logs
// and error messages.
func RedactDSN(dsn string) string {
	if isKeyValueDSN(dsn) {
		// Open refuses the form, but the message that says so shows it.
		return keyValuePassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	scheme, _, isURL := strings.Cut(dsn, "://")
	if !isURL {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return scheme + "://(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// keyValuePassword is the password of a libpq key=value string, quoted or not.
var keyValuePassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// redactErr keeps the passwords in dsn out of an error message.
func redactErr(err error, dsn string) error {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		if pw := u.Query().Get("password"); pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	} else {
		msg = "cannot parse the URL"
	}
	return errors.New(msg)
}

// Lock ids of the advisory locks the store takes on PostgreSQL.
const (
	migrationLock int64 = 0x6761617301 // "gaas" 1
	roleLock      int64 = 0x6761617302 // "gaas" 2
)

// advisoryLock holds a PostgreSQL session advisory lock on one connection
// until the returned function is called.
func (db *DB) advisoryLock(ctx context.Context, id int64) (func(), error) {
	conn, err := db.w.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: advisory lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", id); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: advisory lock: %w", err)
	}
	return func() {
		conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", id)
		conn.Close()
	}, nil
}
