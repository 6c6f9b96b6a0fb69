package cipher

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/scrypt"
)

var update = flag.Bool("update", false, "rewrite the known-answer vectors in testdata")

// vector is one known-answer vector: the inputs, fixed through newWriter,
// and what they must produce.
type vector struct {
	Name      string `json:"name"`
	Password  string `json:"password"`
	LogN      uint8  `json:"log2_n"`
	R         uint32 `json:"r"`
	P         uint32 `json:"p"`
	Salt      string `json:"salt"`
	IV        string `json:"iv"`
	Plaintext string `json:"plaintext,omitempty"`   // hex, for short vectors
	Pattern   int    `json:"pattern_len,omitempty"` // length of pattern(n), for long ones
	Key       string `json:"derived_key"`           // hex of the 64 scrypt bytes
	StreamSHA string `json:"stream_sha256"`
	File      string `json:"file,omitempty"` // the whole stream, for short vectors
}

func (v *vector) plaintext(t testing.TB) []byte {
	if v.Pattern > 0 {
		return pattern(v.Pattern)
	}
	b, err := hex.DecodeString(v.Plaintext)
	require.NoError(t, err)
	return b
}

func (v *vector) inputs(t testing.TB) (kdfParams, [saltSize]byte, [ivSize]byte) {
	var salt [saltSize]byte
	var iv [ivSize]byte
	s, err := hex.DecodeString(v.Salt)
	require.NoError(t, err)
	i, err := hex.DecodeString(v.IV)
	require.NoError(t, err)
	require.Len(t, s, saltSize)
	require.Len(t, i, ivSize)
	copy(salt[:], s)
	copy(iv[:], i)
	return kdfParams{logN: v.LogN, r: v.R, p: v.P}, salt, iv
}

func (v *vector) stream(t testing.TB) []byte {
	kp, salt, iv := v.inputs(t)
	var buf bytes.Buffer
	w, err := newWriter(&buf, []byte(v.Password), kp, salt, iv, ChunkSize)
	require.NoError(t, err)
	writeOdd(t, w, v.plaintext(t))
	require.NoError(t, w.Close())
	return buf.Bytes()
}

const katPath = "testdata/kat.json"

func seqHex(start, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(start + i)
	}
	return hex.EncodeToString(b)
}

// katInputs are the inputs of the vectors; -update recomputes the outputs.
func katInputs() []vector {
	return []vector{
		{Name: "empty", Password: "correct horse battery staple", LogN: 10, R: 8, P: 1,
			Salt: seqHex(0, 32), IV: seqHex(0xf0, 16)},
		{Name: "short", Password: "correct horse battery staple", LogN: 10, R: 8, P: 1,
			Salt: seqHex(0x20, 32), IV: seqHex(0x40, 16),
			Plaintext: hex.EncodeToString([]byte("keepslot known-answer vector: AES-256-CTR, HMAC-SHA256, scrypt\n"))},
		{Name: "wrap128", Password: "p\u00e4ss w\u00f6rd \x00 with odd bytes", LogN: 4, R: 2, P: 3,
			Salt: seqHex(0x80, 32), IV: "fffffffffffffffffffffffffffffffa",
			Plaintext: hex.EncodeToString(pattern(250))},
		{Name: "multichunk", Password: "correct horse battery staple", LogN: 10, R: 8, P: 1,
			Salt: seqHex(0xa0, 32), IV: "0123456789abcdeffffffffffffffff0",
			Pattern: 2*ChunkSize + 1000},
	}
}

func loadVectors(t *testing.T) []vector {
	if *update {
		vs := katInputs()
		for i := range vs {
			v := &vs[i]
			kp, salt, _ := v.inputs(t)
			dk, err := scrypt.Key([]byte(v.Password), salt[:], 1<<kp.logN, int(kp.r), int(kp.p), 64)
			require.NoError(t, err)
			v.Key = hex.EncodeToString(dk)
			s := v.stream(t)
			sum := sha256.Sum256(s)
			v.StreamSHA = hex.EncodeToString(sum[:])
			if v.Pattern == 0 {
				v.File = "kat-" + v.Name + ".enc"
				require.NoError(t, os.WriteFile(filepath.Join("testdata", v.File), s, 0o644))
			}
		}
		b, err := json.MarshalIndent(vs, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(katPath, append(b, '\n'), 0o644))
	}
	b, err := os.ReadFile(katPath)
	require.NoError(t, err)
	var vs []vector
	require.NoError(t, json.Unmarshal(b, &vs))
	require.Len(t, vs, len(katInputs()))
	return vs
}

func TestKnownAnswer(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			kp, salt, _ := v.inputs(t)
			k, err := deriveKeys([]byte(v.Password), salt[:], kp)
			require.NoError(t, err)
			key, err := hex.DecodeString(v.Key)
			require.NoError(t, err)
			assert.Equal(t, key[32:], k.macKey[:], "MAC key")

			s := v.stream(t)
			sum := sha256.Sum256(s)
			assert.Equal(t, v.StreamSHA, hex.EncodeToString(sum[:]), "stream digest")
			if v.File != "" {
				want, err := os.ReadFile(filepath.Join("testdata", v.File))
				require.NoError(t, err)
				assert.Equal(t, want, s, "stream bytes")
			}
			got, err := decryptAll(s, []byte(v.Password), ChunkSize)
			require.NoError(t, err)
			require.True(t, bytes.Equal(v.plaintext(t), got), "plaintext")
		})
	}
}

// TestOpenSSLRecovery runs testdata/openssl-recover.sh, the recipe FORMAT.md
// documents, on every vector, and checks the scrypt key against openssl kdf.
func TestOpenSSLRecovery(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			_, salt, _ := v.inputs(t)
			out, err := exec.Command("openssl", "kdf", "-keylen", "64",
				"-kdfopt", "hexpass:"+hex.EncodeToString([]byte(v.Password)),
				"-kdfopt", "hexsalt:"+hex.EncodeToString(salt[:]),
				"-kdfopt", "n:"+itoa(1<<v.LogN), "-kdfopt", "r:"+itoa(int(v.R)), "-kdfopt", "p:"+itoa(int(v.P)),
				"SCRYPT").CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Equal(t, v.Key, strings.ToLower(strings.NewReplacer(":", "", "\n", "").Replace(string(out))), "openssl kdf")

			f := filepath.Join(dir, v.Name+".enc")
			require.NoError(t, os.WriteFile(f, v.stream(t), 0o600))
			cmd := exec.Command("bash", "testdata/openssl-recover.sh", f)
			cmd.Env = append(os.Environ(), "KEEPSLOT_PASSWORD_HEX="+hex.EncodeToString([]byte(v.Password)))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			plain, err := cmd.Output()
			require.NoError(t, err, "%s", stderr.String())
			require.True(t, bytes.Equal(v.plaintext(t), plain), "openssl recovered different bytes (%d of %d)", len(plain), len(v.plaintext(t)))
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
