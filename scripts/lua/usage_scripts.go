package lua

// The scripts of package usage. Each variable's documentation is the
// header of its file.
var (
	// UsageRecord records usage entries and keeps the rollup; see usage_record.lua.
	UsageRecord = mustLoad("usage_record.lua")
	// UsageDelete deletes a session's usage; see usage_delete.lua.
	UsageDelete = mustLoad("usage_delete.lua")
	// UsageEntries reads a filtered page of entries; see usage_entries.lua.
	UsageEntries = mustLoad("usage_entries.lua")
	// UsageIndex maintains the index of sessions with usage; see usage_index.lua.
	UsageIndex = mustLoad("usage_index.lua")
	// BudgetSet sets a budget's limits; see budget_set.lua.
	BudgetSet = mustLoad("budget_set.lua")
	// BudgetReserve holds an amount on a budget; see budget_reserve.lua.
	BudgetReserve = mustLoad("budget_reserve.lua")
	// BudgetSettle commits or releases a hold; see budget_settle.lua.
	BudgetSettle = mustLoad("budget_settle.lua")
	// BudgetGet reads a budget; see budget_get.lua.
	BudgetGet = mustLoad("budget_get.lua")
)
