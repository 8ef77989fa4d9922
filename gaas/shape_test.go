package gaas_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/gaas-io/gaas/gaas"
)

// TestServiceShapes holds every method of the services that acts for a
// caller to one shape: (ctx, caller int64) and then at most one request
// struct, so that no two ids sit side by side where one could be passed
// for the other. The Authenticator's methods that act for no caller take
// one request struct (Register, Login) or the token they check.
func TestServiceShapes(t *testing.T) {
	ctxType := reflect.TypeFor[context.Context]()
	for _, typ := range []reflect.Type{
		reflect.TypeFor[gaas.JobService](),
		reflect.TypeFor[gaas.UserService](),
		reflect.TypeFor[gaas.Quota](),
		reflect.TypeFor[gaas.Authenticator](),
		reflect.TypeFor[gaas.Catalogue](),
		reflect.TypeFor[gaas.Allocations](),
	} {
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			in := m.Type.NumIn()
			if typ == reflect.TypeFor[gaas.Authenticator]() && in >= 2 && m.Type.In(1).Kind() != reflect.Int64 {
				// (ctx, request struct) or (ctx, token string)
				if in != 2 || m.Type.In(1).Kind() != reflect.Struct && m.Type.In(1).Kind() != reflect.String {
					t.Errorf("%s.%s%s: want (ctx, request struct) or (ctx, token string)", typ.Name(), m.Name, m.Type)
				}
				continue
			}
			ok := in >= 2 && in <= 3 && m.Type.In(0) == ctxType && m.Type.In(1).Kind() == reflect.Int64 &&
				(in == 2 || m.Type.In(2).Kind() == reflect.Struct)
			if !ok {
				t.Errorf("%s.%s%s: want (ctx, caller int64[, request struct])", typ.Name(), m.Name, m.Type)
			}
		}
	}
}
