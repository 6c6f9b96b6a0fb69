package backup

import (
	"fmt"

	"github.com/keepslot/keepslot/slot"
)

// Toggle is a setting of a [Source] (Oplog, UsersAndRoles) that is on,
// off, or left to its default, which the field that holds it documents.
type Toggle int

// The values of a Toggle.
const (
	ToggleAuto Toggle = iota // the field's default
	ToggleOn
	ToggleOff
)

// String returns "auto", "on" or "off".
func (t Toggle) String() string {
	switch t {
	case ToggleAuto:
		return "auto"
	case ToggleOn:
		return "on"
	case ToggleOff:
		return "off"
	}
	return fmt.Sprintf("Toggle(%d)", int(t))
}

// MarshalText returns String's text, so that a Toggle can be a flag
// (flag.TextVar) or a field of a configuration file.
func (t Toggle) MarshalText() ([]byte, error) {
	if t < ToggleAuto || t > ToggleOff {
		return nil, fmt.Errorf("%w: %s", slot.ErrInvalid, t)
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses "auto", "on" or "off"; anything else is slot.ErrInvalid.
func (t *Toggle) UnmarshalText(b []byte) error {
	switch string(b) {
	case "auto", "":
		*t = ToggleAuto
	case "on":
		*t = ToggleOn
	case "off":
		*t = ToggleOff
	default:
		return fmt.Errorf("%w: %q is not auto, on or off", slot.ErrInvalid, b)
	}
	return nil
}
