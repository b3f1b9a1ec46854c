"""The refund workflow (``edirecon refund``): what people decide about the engine's refunds."""
