package store_test

import (
	"context"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// withSSL returns dsn with its TLS parameters replaced.
func withSSL(t *testing.T, dsn string, params map[string]string) string {
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// A URL that asks for TLS gets a verified certificate. The test server's
// certificate is for the name localhost, from a CA that the system does not
// trust: sslmode=require is refused, accepted once the CA is named, and
// refused again for an address the certificate does not name.
func TestPostgresTLSIsVerified(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ca := os.Getenv("GAAS_TEST_POSTGRES_CA")
	if ca == "" {
		t.Skip("set GAAS_TEST_POSTGRES_CA to the CA of the test server's certificate (.ci/run does)")
	}
	ctx := context.Background()

	byName, err := url.Parse(dsn)
	require.NoError(t, err)
	byName.Host = "localhost:" + byName.Port()
	dsn = byName.String()

	_, err = store.Open(ctx, withSSL(t, dsn, map[string]string{"sslmode": "require"}), store.Options{})
	require.Error(t, err, "an untrusted certificate must not be accepted when TLS is asked for")
	assert.Contains(t, err.Error(), "certificate")

	for _, mode := range []string{"require", "verify-full"} {
		db, err := store.Open(ctx, withSSL(t, dsn, map[string]string{"sslmode": mode, "sslrootcert": ca}), store.Options{})
		require.NoError(t, err, mode)
		var ssl bool
		require.NoError(t, store.RawQueryRow(ctx, db, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &ssl))
		assert.True(t, ssl, "%s: the connection is encrypted", mode)
		db.Close()
	}

	// The address is not the name on the certificate: refused, CA or not.
	byAddr, err := url.Parse(withSSL(t, dsn, map[string]string{"sslmode": "require", "sslrootcert": ca}))
	require.NoError(t, err)
	byAddr.Host = "127.0.0.1:" + byAddr.Port()
	_, err = store.Open(ctx, byAddr.String(), store.Options{})
	require.Error(t, err, "a certificate for localhost verified for 127.0.0.1")
	assert.Contains(t, err.Error(), "certificate")
	// With TLS off, the same address connects: the refusals above are
	// the certificate's doing.
	db, err := store.Open(ctx, withSSL(t, byAddr.String(), map[string]string{"sslmode": "disable"}), store.Options{})
	require.NoError(t, err)
	db.Close()
}
