package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keepslot/keepslot/cipher"
)

// TestFlagsRefused: a command line the agent cannot run with is a usage
// error (main exits 2) found at parsing, whose message names the flag and
// what it takes, followed by the usage; -kdf-log-n takes 1..18, what a
// backup accepts, rather than failing later, at the first backup's start.
func TestFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-kdf-log-n", "19"}, "keepslotd: -kdf-log-n 19 is outside 1..18"},
		{[]string{"-kdf-log-n", "22"}, "-kdf-log-n 22 is outside 1..18"},
		{[]string{"-kdf-log-n", "0"}, "-kdf-log-n 0 is outside 1..18"},
		{[]string{"extra"}, `keepslotd: unexpected argument "extra"`},
		{[]string{"-tls-cert", "cert.pem"}, "-tls-cert and -tls-key go together"},
		{[]string{"-tls-key", "key.pem"}, "-tls-cert and -tls-key go together"},
		{[]string{"-read-timeout", "0s"}, "-read-timeout must be positive"},
		{[]string{"-write-timeout", "-1s"}, "-write-timeout must be positive"},
		{[]string{"-idle-timeout", "0s"}, "-idle-timeout must be positive"},
		{[]string{"-operation-timeout", "0s"}, "-operation-timeout must be positive"},
	} {
		var out bytes.Buffer
		_, err := parseFlags(tc.args, &out)
		require.ErrorIs(t, err, errUsage, "%v", tc.args)
		assert.Contains(t, out.String(), tc.says, "%v", tc.args)
		assert.Contains(t, out.String(), "Usage of keepslotd", "%v", tc.args)
	}

	o, err := parseFlags([]string{"-kdf-log-n", "18", "-tls-cert", "c", "-tls-key", "k"}, io.Discard)
	require.NoError(t, err)
	assert.EqualValues(t, 18, o.kdfLogN)
	assert.EqualValues(t, 18, maxKDFLogN, "the documented maximum")
	_, err = cipher.NewKey([]byte("pw"), &cipher.Options{LogN: uint8(maxKDFLogN + 1)})
	assert.ErrorIs(t, err, cipher.ErrKDFTooExpensive, "a backup refuses one more")
}
