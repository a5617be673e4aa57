import pandas as pd

frame = pd.DataFrame({"x": range(10), "y": [v * v for v in range(10)]})
print(frame.describe())
