package bench

// DeviceTable is filled in by the device cases.
func DeviceTable() *Table { return &Table{Title: "devices", Corner: "path"} }
