"""Shop the look: product regions in a photo (pose, detector or model-free) and a photo search per region."""
from modules.look.proposals import LookProposer, LookRegionResult, look_config, search_look, search_regions
from modules.look.regions import Region, iou

__all__ = ["LookProposer", "LookRegionResult", "Region", "iou", "look_config", "search_look", "search_regions"]
