console.log("embed-hbone example: pending");
