package backup

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/slot"
)

func TestToggleText(t *testing.T) {
	for _, tg := range []Toggle{ToggleAuto, ToggleOn, ToggleOff} {
		b, err := tg.MarshalText()
		require.NoError(t, err)
		var back Toggle
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, tg, back)
	}
	var tg = ToggleOn
	err := tg.UnmarshalText([]byte("yes"))
	require.ErrorIs(t, err, slot.ErrInvalid)
	assert.Equal(t, ToggleOn, tg, "unchanged on error")
	_, err = Toggle(7).MarshalText()
	require.ErrorIs(t, err, slot.ErrInvalid)
}
