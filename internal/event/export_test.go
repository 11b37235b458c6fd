package event

// SetScanning turns the scanner on or off (encoding/json alone) until the
// returned function restores it.
func SetScanning(on bool) (restore func()) {
	was := scanning
	scanning = on
	return func() { scanning = was }
}

// CountGiveUps counts each time the scanner leaves a message to
// encoding/json, until the returned function stops it.
func CountGiveUps(n *int) (stop func()) {
	gaveUp = func() { *n++ }
	return func() { gaveUp = nil }
}
