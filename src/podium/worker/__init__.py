"""Model servers Podium runs as replicas: a fake OpenAI worker for tests, llama.cpp on CPU, vLLM on GPU."""
