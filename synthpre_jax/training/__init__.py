"""Training: state, jitted steps, the loop and its hooks, losses, optimizers, metrics out."""
