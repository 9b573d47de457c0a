#!/bin/bash
# Probe a running PixelMatch server the way a user would (every endpoint, a few bad inputs).
#   bash bench/probe_server.sh [URL] [DATA_DIR]     (defaults: http://127.0.0.1:8000 data)
set -u
URL=${1:-http://127.0.0.1:8000}
DATA=${2:-data}
Q=$(ls "$DATA/images/queries" | head -1)
ITEM=$(ls "$DATA/images" | grep -m1 '^sku_')
j() { curl -s "$URL$1" -H 'content-type: application/json' -d "$2"; echo; }
echo "## GET /ready";                 curl -s "$URL/ready" | head -c 600; echo
echo "## text search";                j /search/text '{"query": "minimalist white sneakers", "top_k": 3}'
echo "## text -> image, filters";     j /search/text '{"query": "red floral dress", "retriever": "image", "top_k": 3, "filters": {"price_max": 80}}'
echo "## photo search ($Q)";          curl -s "$URL/search/image" -F image=@"$DATA/images/queries/$Q" -F top_k=3; echo
echo "## photo + text";               curl -s "$URL/search/multimodal" -F image=@"$DATA/images/$ITEM" -F text="but in navy" -F image_weight=0.5 -F top_k=3; echo
echo "## similar";                    curl -s "$URL/similar/sku_000001?top_k=3"; echo
echo "## recommend";                  curl -s "$URL/recommend/u_00001?top_k=3&context=sku_000001"; echo
echo "## recommend, unknown user";    curl -s "$URL/recommend/nobody?top_k=3"; echo
echo "## item";                       curl -s "$URL/items/sku_000001"; echo
echo "## item image";                 curl -s -o /dev/null -w '%{http_code} %{content_type} %{size_download}\n' "$URL/items/sku_000001/image"
echo "## bad: whitespace query";      curl -s -w ' [%{http_code}]\n' "$URL/search/text" -H 'content-type: application/json' -d '{"query": "   "}'
echo "## bad: text file as image";    curl -s -w ' [%{http_code}]\n' "$URL/search/image" -F image=@README.md
echo "## bad: top_k abc";             curl -s -w ' [%{http_code}]\n' "$URL/search/text" -H 'content-type: application/json' -d '{"query": "red", "top_k": "abc"}'
echo "## bad: malformed JSON";        curl -s -w ' [%{http_code}]\n' "$URL/search/text" -H 'content-type: application/json' -d '{"query": '
echo "## nonsense query";             j /search/text '{"query": "qzxv blorptang fnord", "top_k": 2}' | grep -o '"low_confidence":[a-z]*'
echo "## /metrics";                   curl -s "$URL/metrics" | grep -m3 '^pixelmatch_requests_total'
