package gaas_test

import (
	"errors"
	"fmt"

	"github.com/gaas-io/gaas/gaas"
)

func ExampleAllow() {
	alice := gaas.UserPrincipal(gaas.User{ID: 2, Role: gaas.RoleUser})
	fmt.Println(gaas.Allow(alice, gaas.ActionCancelJob, 2))                                        // her own job
	fmt.Println(errors.Is(gaas.Allow(alice, gaas.ActionCancelJob, 3), gaas.ErrNotFound))           // someone else's: it does not exist for her
	fmt.Println(errors.Is(gaas.Allow(alice, gaas.ActionMoveJob, 0), gaas.ErrForbidden))            // only admins and the system move jobs
	fmt.Println(gaas.Allow(gaas.System(gaas.SystemRegistration), gaas.ActionGrantHours, 2) == nil) // the system grants a default quota
	// Output:
	// <nil>
	// true
	// true
	// true
}

func ExampleSettle() {
	actual := gaas.Hours(2500) // milli-hours: 2.5 hours
	refund, err := gaas.Settle(gaas.Move{Price: gaas.Price{Estimate: 6 * gaas.Hour, GPUs: 1, Rate: gaas.RateOne}, From: gaas.StatusRunning, To: gaas.StatusCompleted, Actual: &actual})
	fmt.Println(refund, err)
	// Output: 3.5 <nil>
}
