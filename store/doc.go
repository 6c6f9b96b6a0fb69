// Package store is the single slot that holds a backup.
package store
