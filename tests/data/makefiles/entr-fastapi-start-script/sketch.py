print("a sketch")
