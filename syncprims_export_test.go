package processshared

// SetTestHookEventSet sets the function Event.Set runs between its CAS and
// its wake.
func SetTestHookEventSet(f func()) { testHookEventSet = f }
