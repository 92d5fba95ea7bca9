# Centromere localisation (regression): one training job per model on the train splits
# of the configured preprocessed datasets (rows with a known centromere), MLflow-tracked;
# evaluation on their test splits. docs/centromere.md


rule train_centromere:
    input:
        train=centromere_files("train"),
        val=centromere_files("val"),
    output:
        model="results/centromere/{cmodel}/model.keras",
        metrics="results/centromere/{cmodel}/metrics.json",
        history="results/centromere/{cmodel}/history.json",
        curves="results/centromere/{cmodel}/curves.png",
    log:
        "results/logs/train_centromere/{cmodel}.log",
    benchmark:
        "results/benchmarks/train_centromere/{cmodel}.tsv"
    conda:
        ENV_GPU if GPU["enabled"] else ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RESOURCES,
    params:
        job=centromere_job,
    script:
        "../scripts/train.py"


rule evaluate_centromere:
    input:
        model="results/centromere/{cmodel}/model.keras",
        test=centromere_files("test"),
    output:
        metrics="results/centromere/{cmodel}/test/metrics.json",
        per_class="results/centromere/{cmodel}/test/per_class.csv",
        predictions="results/centromere/{cmodel}/test/predictions.csv",
        figure=report(
            "results/centromere/{cmodel}/test/predictions.png",
            caption="../report/centromere.rst",
            category="Centromere",
            labels={"model": "{cmodel}", "figure": "test predictions"},
        ),
    log:
        "results/logs/evaluate_centromere/{cmodel}.log",
    benchmark:
        "results/benchmarks/evaluate_centromere/{cmodel}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        job=centromere_job,
    script:
        "../scripts/evaluate.py"
