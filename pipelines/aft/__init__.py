"""AFT: propose-and-aggregate inference, and aggregation training data for aggregation fine-tuning."""
from pipelines.aft.config import AftConfig, AftInputs, AggregationDataConfig, AggregationDataInputs
from pipelines.aft.data import run_aggregation_data
from pipelines.aft.run import run_aft

__all__ = ["AftConfig", "AftInputs", "AggregationDataConfig", "AggregationDataInputs", "run_aft", "run_aggregation_data"]
