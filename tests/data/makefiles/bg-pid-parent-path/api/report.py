print("ledger report")
