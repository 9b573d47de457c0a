"""One APIRouter per resource; serving.app includes them."""
