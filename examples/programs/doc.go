// Package programs holds the example Styx programs, one main package per directory, each
// built with GOOS=wasip1 GOARCH=wasm and run by the sandbox:
//
//   - rowcount: counts the data rows of every input; one "aggregate" output "count".
//   - colstats: count, mean and standard deviation of every numeric column; one
//     "aggregate" output "stats".
//   - svmtrain: trains a linear SVM on every CSV input (an input named "model" warm-starts
//     it: fine-tuning); one "model" output "model". Params: JSON ml.Config, and
//     "curve": true to log the training curve (objective, training accuracy per epoch).
//   - slowcount: reads every input again and again in small reads ({"passes": N}); one
//     "aggregate" output "count". A long job that calls the host often, for lifecycle tests.
//   - svmpredict: a reactor (-buildmode=c-shared) that loads the input "model" once and
//     answers queries (CSV with a header row, or JSON {"rows":[{feature: value}]}).
package programs
