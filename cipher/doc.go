// Package cipher is an authenticated AES-256-CTR stream under a key derived
// from a password.
package cipher
