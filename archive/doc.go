// Package archive writes and reads streaming archives of MongoDB collections.
package archive
