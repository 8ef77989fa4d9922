package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// TestCheckedServicesHoldOnlyTheirInterface: the store's checked services
// have no method beyond their gaas interface, whose every call takes the
// caller (gaas's TestServiceShapes); the methods that check no caller
// (making accounts with any role, reading password hashes) are Accounts'.
func TestCheckedServicesHoldOnlyTheirInterface(t *testing.T) {
	for impl, iface := range map[reflect.Type]reflect.Type{
		reflect.TypeFor[*store.UserService]():  reflect.TypeFor[gaas.UserService](),
		reflect.TypeFor[*store.JobService]():   reflect.TypeFor[gaas.JobService](),
		reflect.TypeFor[*store.QuotaService](): reflect.TypeFor[gaas.Quota](),
	} {
		for i := range impl.NumMethod() {
			name := impl.Method(i).Name
			_, ok := iface.MethodByName(name)
			assert.True(t, ok, "%s.%s is not a method of gaas.%s", impl.Elem().Name(), name, iface.Name())
		}
	}
	acc := reflect.TypeFor[*store.Accounts]()
	for _, name := range []string{"CreateUser", "Credentials", "SetPasswordHash", "EnsureAdmin", "UserByID", "RevokeTokens"} {
		_, ok := acc.MethodByName(name)
		assert.True(t, ok, "Accounts.%s", name)
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)

		t.Run("usernames_are_unique_without_regard_to_case", func(t *testing.T) {
			_, err := db.Accounts.CreateUser(ctx, "alice", "h", gaas.RoleUser)
			require.NoError(t, err)
			_, err = db.Accounts.CreateUser(ctx, "ALICE", "h", gaas.RoleUser)
			require.ErrorIs(t, err, gaas.ErrConflict)
			u, hash, err := db.Accounts.Credentials(ctx, "Alice")
			require.NoError(t, err)
			assert.Equal(t, "alice", u.Username)
			assert.Equal(t, "h", hash)
		})

		t.Run("invalid_usernames", func(t *testing.T) {
			_, err := db.Accounts.CreateUser(ctx, "a b", "h", gaas.RoleUser)
			require.ErrorIs(t, err, gaas.ErrInvalid)
			_, err = db.Accounts.CreateUser(ctx, "carol", "h", "superuser")
			require.ErrorIs(t, err, gaas.ErrInvalid)
		})

		t.Run("unknown_credentials", func(t *testing.T) {
			_, _, err := db.Accounts.Credentials(ctx, "nobody")
			require.ErrorIs(t, err, gaas.ErrNotFound)
		})

		t.Run("password_hash_is_replaced_only_if_unchanged", func(t *testing.T) {
			u, err := db.Accounts.CreateUser(ctx, "dave", "old", gaas.RoleUser)
			require.NoError(t, err)
			require.NoError(t, db.Accounts.SetPasswordHash(ctx, u.ID, "stale", "lost"))
			_, hash, err := db.Accounts.Credentials(ctx, "dave")
			require.NoError(t, err)
			assert.Equal(t, "old", hash)
			require.NoError(t, db.Accounts.SetPasswordHash(ctx, u.ID, "old", "new"))
			_, hash, err = db.Accounts.Credentials(ctx, "dave")
			require.NoError(t, err)
			assert.Equal(t, "new", hash)
		})

		t.Run("ensure_admin_promotes_only_when_adopting", func(t *testing.T) {
			u, err := db.Accounts.CreateUser(ctx, "erin", "h1", gaas.RoleUser)
			require.NoError(t, err)
			_, err = db.Accounts.EnsureAdmin(ctx, "Erin", "h2", false)
			require.ErrorIs(t, err, gaas.ErrConflict, "whoever registered the name first does not become admin")
			same, hash, err := db.Accounts.Credentials(ctx, "erin")
			require.NoError(t, err)
			assert.Equal(t, "h1", hash)
			assert.Equal(t, u, same, "nothing was written")

			a, err := db.Accounts.EnsureAdmin(ctx, "Erin", "h2", true)
			require.NoError(t, err)
			assert.Equal(t, u.ID, a.ID)
			assert.Equal(t, gaas.RoleAdmin, a.Role)
			assert.Equal(t, u.TokenGeneration+1, a.TokenGeneration, "the adopted account's tokens end")
			_, hash, err = db.Accounts.Credentials(ctx, "erin")
			require.NoError(t, err)
			assert.Equal(t, "h2", hash)
			again, err := db.Accounts.EnsureAdmin(ctx, "erin", "h3", false)
			require.NoError(t, err, "an existing admin keeps working")
			assert.Equal(t, a.ID, again.ID)
			assert.Equal(t, a.TokenGeneration+1, again.TokenGeneration, "a new password ends the old tokens")
		})

		t.Run("ensure_admin_races", func(t *testing.T) {
			var wg sync.WaitGroup
			ids := make([]int64, 8)
			for i := range ids {
				wg.Go(func() {
					a, err := db.Accounts.EnsureAdmin(ctx, "frank", "h", false)
					assert.NoError(t, err)
					ids[i] = a.ID
				})
			}
			wg.Wait()
			for _, id := range ids {
				assert.Equal(t, ids[0], id)
			}
		})

		t.Run("user_visibility", func(t *testing.T) {
			a, b := f.user(t, 0), f.user(t, 0)
			got, err := db.Users.User(ctx, a.ID, gaas.GetUserRequest{UserID: a.ID})
			require.NoError(t, err)
			assert.Equal(t, a.Username, got.Username)
			_, err = db.Users.User(ctx, a.ID, gaas.GetUserRequest{UserID: b.ID})
			assert.ErrorIs(t, err, gaas.ErrNotFound)
			_, err = db.Users.User(ctx, f.admin.ID, gaas.GetUserRequest{UserID: b.ID})
			assert.NoError(t, err)
			_, err = db.Users.User(ctx, 999999, gaas.GetUserRequest{UserID: a.ID})
			assert.ErrorIs(t, err, gaas.ErrUnauthorized)
		})

		t.Run("roles", func(t *testing.T) {
			u := f.user(t, 0)
			_, err := db.Users.SetRole(ctx, u.ID, gaas.SetRoleRequest{UserID: u.ID, Role: gaas.RoleAdmin})
			require.ErrorIs(t, err, gaas.ErrForbidden, "no one makes themselves an admin")
			got, err := db.Users.SetRole(ctx, f.admin.ID, gaas.SetRoleRequest{UserID: u.ID, Role: gaas.RoleAdmin})
			require.NoError(t, err)
			assert.Equal(t, gaas.RoleAdmin, got.Role)
			_, err = db.Users.SetRole(ctx, f.admin.ID, gaas.SetRoleRequest{UserID: u.ID, Role: "root"})
			require.ErrorIs(t, err, gaas.ErrInvalid)
			got, err = db.Users.SetRole(ctx, f.admin.ID, gaas.SetRoleRequest{UserID: u.ID, Role: gaas.RoleUser})
			require.NoError(t, err)
			assert.Equal(t, gaas.RoleUser, got.Role)
		})

		t.Run("list_pages_in_id_order", func(t *testing.T) {
			_, err := db.Users.Users(ctx, f.user(t, 0).ID, gaas.UserFilter{})
			require.ErrorIs(t, err, gaas.ErrForbidden)
			var ids []int64
			cursor := ""
			for {
				page, err := db.Users.Users(ctx, f.admin.ID, gaas.UserFilter{Page: gaas.Page{Limit: 3, Cursor: cursor}})
				require.NoError(t, err)
				for _, u := range page.Items {
					ids = append(ids, u.ID)
				}
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			assert.IsIncreasing(t, ids)
			all, err := db.Users.Users(ctx, f.admin.ID, gaas.UserFilter{Page: gaas.Page{Limit: gaas.MaxLimit}})
			require.NoError(t, err)
			assert.Len(t, ids, len(all.Items))
			assert.Greater(t, len(ids), 3)
		})

		t.Run("find_by_username", func(t *testing.T) {
			u, err := db.Accounts.CreateUser(ctx, "Mixed.Case_"+strconv.FormatInt(f.user(t, 0).ID, 10), "unused-hash", gaas.RoleUser)
			require.NoError(t, err)
			_, err = db.Users.Users(ctx, u.ID, gaas.UserFilter{Username: u.Username})
			require.ErrorIs(t, err, gaas.ErrForbidden, "only admins look users up")
			for _, name := range []string{u.Username, strings.ToUpper(u.Username), strings.ToLower(u.Username)} {
				got, err := db.Users.Users(ctx, f.admin.ID, gaas.UserFilter{Username: name})
				require.NoError(t, err)
				require.Len(t, got.Items, 1, name)
				assert.Equal(t, u.ID, got.Items[0].ID)
				assert.Empty(t, got.NextCursor)
			}
			// Exact, not a prefix or a pattern; a name no one could have is no one.
			for _, name := range []string{"Mixed.Case_", "Mixed.Case_%", u.Username[:len(u.Username)-1] + "_", "no such user", "'; DROP TABLE users; --", strings.Repeat("x", 500)} {
				got, err := db.Users.Users(ctx, f.admin.ID, gaas.UserFilter{Username: name})
				require.NoError(t, err, name)
				assert.Empty(t, got.Items, name)
				assert.NotNil(t, got.Items, name)
			}
		})
	})
}

func TestLastAdminCannotBeDemoted(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, err := db.Users.SetRole(ctx, f.admin.ID, gaas.SetRoleRequest{UserID: f.admin.ID, Role: gaas.RoleUser})
		require.ErrorIs(t, err, gaas.ErrConflict)
		other, err := db.Accounts.EnsureAdmin(ctx, "second", "h", false)
		require.NoError(t, err)
		_, err = db.Users.SetRole(ctx, other.ID, gaas.SetRoleRequest{UserID: f.admin.ID, Role: gaas.RoleUser})
		require.NoError(t, err)
	})
}

// A username that no account could have is not looked up: on every backend
// it is simply no one, never a driver's error about text it cannot hold.
func TestCredentialsOfImpossibleNames(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		newFixture(t, db)
		for _, name := range []string{"ro\x00ot", "root\n", "\xffroot", "ro'ot", `ro\'ot`, ""} {
			_, _, err := db.Accounts.Credentials(context.Background(), name)
			assert.ErrorIs(t, err, gaas.ErrNotFound, "%q", name)
		}
	})
}

func TestDisable(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, 10*gaas.Credit)

		_, err := db.Users.SetDisabled(ctx, u.ID, gaas.SetDisabledRequest{UserID: f.admin.ID, Disabled: true})
		require.ErrorIs(t, err, gaas.ErrForbidden, "only admins disable")
		_, err = db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: 424242, Disabled: true})
		require.ErrorIs(t, err, gaas.ErrNotFound)

		d, err := db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: u.ID, Disabled: true})
		require.NoError(t, err)
		assert.True(t, d.Disabled)
		assert.Equal(t, u.TokenGeneration+1, d.TokenGeneration, "disabling ends the user's tokens")
		_, err = db.Users.User(ctx, u.ID, gaas.GetUserRequest{UserID: u.ID})
		assert.ErrorIs(t, err, gaas.ErrUnauthorized, "a disabled caller is no one")
		_, err = db.Jobs.List(ctx, u.ID, gaas.JobFilter{})
		assert.ErrorIs(t, err, gaas.ErrUnauthorized)
		// Nor can a disabled caller spend: the charge itself refuses them.
		for _, key := range []string{"", "after-disable"} {
			_, err = db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour, IdempotencyKey: key})
			assert.ErrorIs(t, err, gaas.ErrUnauthorized, "key %q", key)
		}
		assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID), "nothing was charged")
		again, err := db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: u.ID, Disabled: true})
		require.NoError(t, err)
		assert.Equal(t, d, again, "disabling twice changes nothing")

		e, err := db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: u.ID, Disabled: false})
		require.NoError(t, err)
		assert.False(t, e.Disabled)
		_, err = db.Users.User(ctx, u.ID, gaas.GetUserRequest{UserID: u.ID})
		assert.NoError(t, err)
	})
}

func TestLastEnabledAdminStays(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, err := db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: f.admin.ID, Disabled: true})
		require.ErrorIs(t, err, gaas.ErrConflict, "the last admin cannot disable themselves")

		other, err := db.Accounts.EnsureAdmin(ctx, "second", "h", false)
		require.NoError(t, err)
		_, err = db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: other.ID, Disabled: true})
		require.NoError(t, err)
		_, err = db.Users.SetRole(ctx, f.admin.ID, gaas.SetRoleRequest{UserID: f.admin.ID, Role: gaas.RoleUser})
		require.ErrorIs(t, err, gaas.ErrConflict, "a disabled admin does not count")
		_, err = db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: f.admin.ID, Disabled: true})
		require.ErrorIs(t, err, gaas.ErrConflict)

		_, err = db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: other.ID, Disabled: false})
		require.NoError(t, err)
		_, err = db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: f.admin.ID, Disabled: true})
		require.NoError(t, err, "another admin is enabled")
		_, err = db.Users.SetDisabled(ctx, other.ID, gaas.SetDisabledRequest{UserID: other.ID, Disabled: true})
		require.ErrorIs(t, err, gaas.ErrConflict)
	})
}

// Admins disabling each other at once leave one enabled admin.
func TestConcurrentDisablesKeepAnAdmin(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admins := []gaas.User{f.admin}
		for i := range 3 {
			a, err := db.Accounts.EnsureAdmin(ctx, fmt.Sprintf("admin%d", i), "h", false)
			require.NoError(t, err)
			admins = append(admins, a)
		}
		var wg sync.WaitGroup
		for i, a := range admins {
			wg.Go(func() {
				// each disables the next one, and demotes the one after
				target := admins[(i+1)%len(admins)]
				// Refusals are expected: the last enabled admin stays (409),
				// and a caller disabled (401) or demoted (403) meanwhile.
				refused := func(err error) bool {
					return err == nil || errors.Is(err, gaas.ErrConflict) || errors.Is(err, gaas.ErrUnauthorized) || errors.Is(err, gaas.ErrForbidden)
				}
				_, err := db.Users.SetDisabled(ctx, a.ID, gaas.SetDisabledRequest{UserID: target.ID, Disabled: true})
				assert.True(t, refused(err), "%v", err)
				_, err = db.Users.SetRole(ctx, a.ID, gaas.SetRoleRequest{UserID: admins[(i+2)%len(admins)].ID, Role: gaas.RoleUser})
				assert.True(t, refused(err), "%v", err)
			})
		}
		wg.Wait()
		enabled := 0
		for _, a := range admins {
			u, err := db.Accounts.UserByID(ctx, a.ID)
			require.NoError(t, err)
			if u.IsAdmin() && !u.Disabled {
				enabled++
			}
		}
		assert.GreaterOrEqual(t, enabled, 1)
	})
}
