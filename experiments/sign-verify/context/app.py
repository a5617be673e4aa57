print("signed app", flush=True)
