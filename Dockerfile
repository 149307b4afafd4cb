# idgraph service image: `docker compose up` runs it against Neo4j (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
# /home/idgraph/secret holds the server secret (a volume in docker-compose.yml): it must
# outlive the container, or erased identifiers would no longer be refused.
# constraints.txt pins every package the image gets to versions the suite ran with.
RUN pip install -c constraints.txt . && useradd --create-home --uid 10001 idgraph \
    && install -d -o idgraph -g idgraph -m 700 /home/idgraph/secret

USER idgraph
WORKDIR /home/idgraph
EXPOSE 8000
CMD ["idgraph", "serve", "--host", "0.0.0.0"]
