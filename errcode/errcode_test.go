package errcode_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/keepslot/keepslot/errcode"
)

var (
	errBase   = errcode.New(errcode.Unreachable, "base: the server cannot be reached")
	errNarrow = errcode.Sub(errBase, "narrow: the S3 server cannot be reached")
)

type ownCode struct{}

func (ownCode) Error() string           { return "own" }
func (ownCode) ErrorCode() errcode.Code { return errcode.Exists }

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want errcode.Code
	}{
		{nil, errcode.OK},
		{errors.New("plain"), errcode.Internal},
		{errBase, errcode.Unreachable},
		{fmt.Errorf("wrapped: %w", errBase), errcode.Unreachable},
		{fmt.Errorf("joined: %w, %w", errors.New("x"), errNarrow), errcode.Unreachable},
		{context.Canceled, errcode.Cancelled},
		{fmt.Errorf("late: %w", context.DeadlineExceeded), errcode.Cancelled},
		{fmt.Errorf("first wins: %w: %w", errBase, context.Canceled), errcode.Unreachable},
		{ownCode{}, errcode.Exists},
	} {
		if got := errcode.Of(tc.err); got != tc.want {
			t.Errorf("Of(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestSub(t *testing.T) {
	err := fmt.Errorf("put: %w", errNarrow)
	if !errors.Is(err, errNarrow) || !errors.Is(err, errBase) {
		t.Errorf("%v does not match both sentinels", err)
	}
	if errors.Is(fmt.Errorf("put: %w", errBase), errNarrow) {
		t.Error("the parent matches the narrower sentinel")
	}
	if errNarrow.Error() != "narrow: the S3 server cannot be reached" {
		t.Errorf("text %q", errNarrow.Error())
	}
}

func ExampleOf() {
	err := fmt.Errorf("slot: start a backup: %w", errcode.New(errcode.SlotOccupied, "store: a backup already exists in the slot"))
	fmt.Println(errcode.Of(err))
	// Output: slot_occupied
}
