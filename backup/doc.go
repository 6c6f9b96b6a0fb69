// Package backup backs up a MongoDB node into a single encrypted slot and
// restores it.
package backup
