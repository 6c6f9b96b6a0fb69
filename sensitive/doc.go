// Package sensitive backs up sensitive configuration, such as encryption keys,
// into its own slot under its own password.
package sensitive
