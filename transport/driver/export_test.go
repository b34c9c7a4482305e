package driver

import "time"

// SetCertRenewal changes the certificate renewal age for a test and
// returns the function that restores it.
func SetCertRenewal(d time.Duration) (restore func()) {
	old := certRenewal.Swap(int64(d))
	return func() { certRenewal.Store(old) }
}
