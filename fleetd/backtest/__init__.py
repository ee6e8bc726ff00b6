"""`fleetd backtest`: replay a price history through the curtailment policy over a simulated fleet."""
