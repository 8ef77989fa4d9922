package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/store"
)

// An operator adds an executor and gets its token, once, alone on stdout;
// the token verifies until the operator revokes it; names are unique in
// any letter case.
func TestExecutorsCLI(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			db := target(t)
			_, _, err := admin(t, db, "s3cret-password\n", "user", "add", "root", "-admin", "-password-stdin")
			require.NoError(t, err)

			out, code, err := admin(t, db, "", "executors", "add", "node1")
			require.NoError(t, err, out)
			assert.Equal(t, 0, code)
			token := strings.TrimSuffix(out, "\n")
			assert.True(t, authn.IsExecutorToken(token), "%q", out)

			out, _, err = admin(t, db, "", "executors", "add", "node2", "-json")
			require.NoError(t, err, out)
			var x executorJSON
			require.NoError(t, json.Unmarshal([]byte(out), &x), out)
			assert.Equal(t, "node2", x.Name)
			assert.True(t, authn.IsExecutorToken(x.Token))
			assert.NotEqual(t, token, x.Token)

			out, code, _ = admin(t, db, "", "executors", "add", "NODE1")
			assert.Equal(t, 1, code, "a name taken in another case: %s", out)
			_, code, _ = admin(t, db, "", "executors", "add", "bad name")
			assert.Equal(t, 1, code)
			_, code, _ = admin(t, db, "", "executors", "add")
			assert.Equal(t, 2, code)
			_, code, _ = admin(t, db, "", "executors", "rename", "node1")
			assert.Equal(t, 2, code)

			s, err := store.Open(context.Background(), db, store.Options{})
			require.NoError(t, err)
			defer s.Close()
			got, err := s.Executors.AuthenticateExecutor(context.Background(), token)
			require.NoError(t, err)
			assert.Equal(t, "node1", got)

			out, _, err = admin(t, db, "", "executors", "list")
			require.NoError(t, err, out)
			assert.Regexp(t, `(?m)^NAME +CREATED +LAST_SEEN +REVOKED\nnode1 +\S+ +\S+Z +-\nnode2 +\S+ +- +-$`, out)
			assert.NotContains(t, out, token, "a token is shown once")

			out, _, err = admin(t, db, "", "executors", "revoke", "Node1", "-json")
			require.NoError(t, err, out)
			var revoked executorJSON
			require.NoError(t, json.Unmarshal([]byte(out), &revoked), out)
			assert.NotNil(t, revoked.RevokedAt)
			assert.Empty(t, revoked.Token)
			_, err = s.Executors.AuthenticateExecutor(context.Background(), token)
			assert.Error(t, err, "a revoked token is refused")
			_, code, _ = admin(t, db, "", "executors", "revoke", "nosuch")
			assert.Equal(t, 1, code)
		})
	}
}
