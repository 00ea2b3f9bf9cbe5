from vlp_sweep.cli import console

console()
