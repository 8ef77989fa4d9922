package store_test

import (
	"context"
	"encoding/binary"
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// escapesLiteral is a login username that, formatted into SQL as a quoted
// literal on a server with standard_conforming_strings off, closes the
// literal with its backslash and returns the admin's row with mallory's
// password hash: whoever knows mallory's password logs in as the admin.
const escapesLiteral = `\') UNION SELECT a.id, a.username, m.password_hash, a.role, a.balance, a.created_at` +
	` FROM users a, users m WHERE a.role = $$admin$$ AND m.username = $$mallory$$ --`

// tricky holds what a backslash-escaping server would misread in a quoted
// literal: backslashes before quotes, doubled quotes, a comment.
const tricky = `echo \' '' \\' "\" \x41 ; -- \`

// TestNonStandardStrings runs the paths that take user-supplied text on a
// database whose sessions default to standard_conforming_strings off, the
// setting under which a backslash in a quoted literal escapes its closing
// quote. Every value must mean itself, byte for byte.
func TestNonStandardStrings(t *testing.T) {
	dsn := storetest.PostgresDatabase(t, "standard_conforming_strings = off")
	db := openStore(t, dsn, store.Options{})
	ctx := context.Background()

	root, err := db.Accounts.EnsureAdmin(ctx, "root", "root-hash", false)
	require.NoError(t, err)
	mallory, err := db.Accounts.CreateUser(ctx, "mallory", "mallory-hash", gaas.RoleUser)
	require.NoError(t, err)

	t.Run("login", func(t *testing.T) {
		u, hash, err := db.Accounts.Credentials(ctx, escapesLiteral)
		assert.ErrorIs(t, err, gaas.ErrNotFound, "found user %d (%s) with hash %q", u.ID, u.Username, hash)
		u, hash, err = db.Accounts.Credentials(ctx, "MALLORY")
		require.NoError(t, err)
		assert.Equal(t, mallory.ID, u.ID)
		assert.Equal(t, "mallory-hash", hash)
	})

	t.Run("ensure admin", func(t *testing.T) {
		_, err := db.Accounts.EnsureAdmin(ctx, escapesLiteral, "new-hash", true)
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		_, hash, err := db.Accounts.Credentials(ctx, "root")
		require.NoError(t, err)
		assert.Equal(t, "root-hash", hash, "the admin's hash changed")
	})

	t.Run("submission", func(t *testing.T) {
		req := gaas.SubmitRequest{Command: tricky, GPUType: tricky, EstimatedHours: gaas.Hour, IdempotencyKey: tricky}
		j, err := db.Jobs.Submit(ctx, mallory.ID, req)
		require.NoError(t, err)
		again, err := db.Jobs.Submit(ctx, mallory.ID, req)
		require.NoError(t, err, "a retry with the same key")
		assert.Equal(t, j.ID, again.ID, "a retry with the same key is the same job")
		got, err := db.Jobs.Get(ctx, mallory.ID, gaas.GetJobRequest{JobID: j.ID})
		require.NoError(t, err)
		assert.Equal(t, tricky, got.Command)
		assert.Equal(t, tricky, got.GPUType)

		var command, key string
		require.NoError(t, rawOpen(t, dsn).QueryRow("SELECT command, idempotency_key FROM jobs WHERE id = $1", j.ID).Scan(&command, &key))
		assert.Equal(t, tricky, command, "the bytes stored")
		assert.Equal(t, tricky, key, "the bytes stored")
	})

	t.Run("reason", func(t *testing.T) {
		_, err := db.Quota.Grant(ctx, root.ID, gaas.GrantRequest{UserID: mallory.ID, Delta: gaas.Credit, Reason: tricky})
		require.NoError(t, err)
		page, err := db.Quota.Ledger(ctx, root.ID, gaas.LedgerRequest{UserID: mallory.ID})
		require.NoError(t, err)
		last := page.Items[len(page.Items)-1]
		assert.Equal(t, tricky, last.Reason)
	})
}

// TestOpenRefusesNonStandardStrings opens the store through something that
// drops the parameters of the connection's startup message, as a pooler
// that does not forward them would, onto a database whose sessions default
// to standard_conforming_strings off. The store must refuse to start, and
// say why, rather than run on a connection that reads literals otherwise.
func TestOpenRefusesNonStandardStrings(t *testing.T) {
	dsn := storetest.PostgresDatabase(t, "standard_conforming_strings = off")
	_, err := store.Open(context.Background(), dropStartupParams(t, dsn), store.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "standard_conforming_strings")

	t.Run("asked off in the URL", func(t *testing.T) {
		u, err := url.Parse(dsn)
		require.NoError(t, err)
		q := u.Query()
		q.Set("standard_conforming_strings", "off")
		u.RawQuery = q.Encode()
		db := openStore(t, u.String(), store.Options{})
		u2, _, err := db.Accounts.Credentials(context.Background(), escapesLiteral)
		assert.ErrorIs(t, err, gaas.ErrNotFound, "found user %d", u2.ID)
	})
}

// dropStartupParams starts a proxy to the PostgreSQL server of dsn that
// forwards every connection's startup message with only its user and
// database, and returns the DSN that reaches the server through it.
func dropStartupParams(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				startup, err := readStartup(c)
				if err != nil {
					return
				}
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				if _, err := s.Write(startup); err != nil {
					return
				}
				go func() { io.Copy(s, c); s.Close() }()
				io.Copy(c, s)
			}()
		}
	}()
	u.Host = ln.Addr().String()
	return u.String()
}

// readStartup reads a client's startup message, declining TLS and GSS
// encryption if asked first, and returns it with every parameter but user
// and database left out.
func readStartup(c net.Conn) ([]byte, error) {
	const protocol3, sslRequest, gssRequest = 196608, 80877103, 80877104
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return nil, err
		}
		msg := make([]byte, binary.BigEndian.Uint32(size[:])-4)
		if _, err := io.ReadFull(c, msg); err != nil {
			return nil, err
		}
		switch binary.BigEndian.Uint32(msg) {
		case sslRequest, gssRequest:
			if _, err := c.Write([]byte("N")); err != nil {
				return nil, err
			}
			continue
		case protocol3:
		default:
			return nil, errors.New("not a startup message")
		}
		out := binary.BigEndian.AppendUint32(make([]byte, 4, len(msg)+4), protocol3)
		fields := strings.Split(string(msg[4:]), "\x00")
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "user" || fields[i] == "database" {
				out = append(append(append(append(out, fields[i]...), 0), fields[i+1]...), 0)
			}
		}
		out = append(out, 0)
		binary.BigEndian.PutUint32(out, uint32(len(out)))
		return out, nil
	}
}

// TestNoFormattedArguments type-checks the store's code and fails on any
// call that hands bun arguments to format into a statement's text (an
// args parameter of NewRaw, ExecContext, Where, ...): a statement with
// arguments must go through the store's query or exec, which bind them.
func TestNoFormattedArguments(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list the store's files and dependencies")
	}
	list := func(args ...string) []string {
		out, err := exec.Command(goTool, append([]string{"list"}, args...)...).Output()
		require.NoError(t, err, "go list %s", strings.Join(args, " "))
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	exports := map[string]string{}
	for _, line := range list("-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", ".") {
		path, file, _ := strings.Cut(line, "\t")
		exports[path] = file
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range strings.Fields(list("-f", `{{join .GoFiles " "}}`, ".")[0]) {
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		files = append(files, f)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		return os.Open(exports[path])
	})}
	_, err = conf.Check("github.com/gaas-io/gaas/store", fset, files, info)
	require.NoError(t, err)

	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var name *ast.Ident
			switch fun := call.Fun.(type) {
			case *ast.SelectorExpr:
				name = fun.Sel
			case *ast.Ident:
				name = fun
			default:
				return true
			}
			fn, ok := info.Uses[name].(*types.Func)
			if !ok || fn.Pkg() == nil || !strings.HasPrefix(fn.Pkg().Path(), "github.com/uptrace/bun") {
				return true
			}
			sig := fn.Type().(*types.Signature)
			params := sig.Params()
			if !sig.Variadic() || params.At(params.Len()-1).Name() != "args" {
				return true
			}
			if len(call.Args) >= params.Len() {
				t.Errorf("%s: %s.%s is given arguments to format into SQL; use query or exec, which bind them",
					fset.Position(call.Pos()), fn.Pkg().Name(), fn.Name())
			}
			return true
		})
	}
}
